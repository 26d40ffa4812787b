"""Zone-file lines read strictly, and the DNS element's records and answers without a network."""
from __future__ import annotations

import pytest
from twisted.names import dns, error

from circuit import errors
from circuit.core.dns import DnsServer, parse_addr
from circuit.core.zone import parse_line, parse_lines
from core_model import failure, value

GOOD = [
    ("db.cluster. A 10.0.0.7", "db.cluster. 60 IN A 10.0.0.7"),
    ("DB.Cluster 300 IN A 10.0.0.7", "db.cluster. 300 IN A 10.0.0.7"),
    ("db.cluster. IN 5 AAAA 2001:DB8::1", "db.cluster. 5 IN AAAA 2001:db8::1"),
    ("w.cluster. CNAME db.cluster", "w.cluster. 60 IN CNAME db.cluster."),
    ("_pg._tcp.cluster. SRV 10 5 5432 db.cluster.", "_pg._tcp.cluster. 60 IN SRV 10 5 5432 db.cluster."),
    ('t.cluster. TXT "v=1 two" three', 't.cluster. 60 IN TXT "v=1 two" "three"'),
    ("cluster. MX 10 mail.cluster.", "cluster. 60 IN MX 10 mail.cluster."),
    ("sub.cluster. NS ns1.cluster.", "sub.cluster. 60 IN NS ns1.cluster."),
]

BAD = [
    ("db.cluster. A 10.0.0", "IPv4 address"),
    ("db.cluster. A ::1", "IPv4 address"),
    ("db.cluster. AAAA 10.0.0.1", "IPv6 address"),
    ("db.cluster. A", "one IPv4 address"),
    ("db.cluster. A 1.2.3.4 5.6.7.8", "one IPv4 address"),
    ("db.cluster.", "NAME [TTL] [IN] TYPE DATA"),
    ("db.cluster. PTR x.", "type 'PTR' is not served"),
    ("db.cluster. CH A 1.2.3.4", "only IN"),
    ("db.cluster. 5 5 A 1.2.3.4", "not served"),
    ("-bad.cluster. A 1.2.3.4", "bad domain name"),
    ("a..cluster. A 1.2.3.4", "bad domain name"),
    ("x. SRV 1 2 70000 a.", "SRV port"),
    ("x. SRV 1 2 a.", "PRIORITY WEIGHT PORT TARGET"),
    ('x. TXT "open', "unclosed quote"),
    ("x. TXT " + "a" * 256, "255 bytes"),
    ("x. 99999999999 A 1.2.3.4", "TTL"),
    ("x. A 1.2.3.4\x00", "printable"),
]


@pytest.mark.parametrize("line, shown", GOOD)
def test_a_line_is_read_and_written_back_canonically(line, shown):
    assert parse_line(line).line() == shown


@pytest.mark.parametrize("line, says", BAD)
def test_a_bad_line_is_refused_with_the_line(line, says):
    with pytest.raises(errors.Invalid) as refused:
        parse_line(line)
    assert says in refused.value.message and repr(line[:20])[1:-1] in refused.value.message


def test_several_lines_blank_lines_and_comments():
    records = parse_lines("a. A 1.1.1.1\n\n; a comment\nb. A 2.2.2.2\n")
    assert [r.name for r in records] == ["a.", "b."]
    with pytest.raises(errors.Invalid, match="line 2"):
        parse_lines("a. A 1.1.1.1\nb. A 2\n")
    with pytest.raises(errors.Invalid, match="no record"):
        parse_lines("; nothing\n")


def test_set_replaces_a_name_and_type_and_is_all_or_nothing():
    srv = DnsServer(reactor=None)
    srv.set("db.c. A 10.0.0.1\ndb.c. TXT old\n")
    srv.set("db.c. A 10.0.0.2\ndb.c. A 10.0.0.3\n")  # replaces the A records, keeps the TXT
    assert srv.zone_text() == "db.c. 60 IN A 10.0.0.2\ndb.c. 60 IN A 10.0.0.3\ndb.c. 60 IN TXT \"old\"\n"
    before = srv.zone_text()
    for bad in ("new.c. A 1.1.1.1\nworse.c. A 1\n", "db.c. CNAME other.c.\n"):
        with pytest.raises(errors.Invalid):
            srv.set(bad)
        assert srv.zone_text() == before  # nothing changed


def test_unset_a_name_or_one_type():
    srv = DnsServer(reactor=None)
    srv.set("db.c. A 10.0.0.1\ndb.c. TXT t\n")
    srv.unset("db.c. TXT")
    assert srv.zone_text() == "db.c. 60 IN A 10.0.0.1\n"
    with pytest.raises(errors.NotFound):
        srv.unset("db.c. TXT")
    srv.unset("DB.C")
    assert srv.zone_text() == ""
    with pytest.raises(errors.NotFound):
        srv.unset("db.c.")
    with pytest.raises(errors.Invalid):
        srv.unset("a. b. c.")


def test_answers_follow_cnames_add_addresses_and_say_nxdomain():
    srv = DnsServer(reactor=None)
    srv.set("db.c. A 10.0.0.7\nw.c. CNAME db.c.\n_pg._tcp.c. SRV 1 1 5432 db.c.\nout.c. CNAME example.org.\n")
    answers, _, additional = value(srv._answer(b"w.c", dns.A))
    assert [(a.name.name, a.type) for a in answers] == [(b"w.c", dns.CNAME), (b"db.c", dns.A)]
    answers, _, additional = value(srv._answer(b"_pg._tcp.c", dns.SRV))
    assert [a.payload.port for a in answers] == [5432] and [a.type for a in additional] == [dns.A]
    assert [a.type for a in value(srv._answer(b"out.c", dns.A))[0]] == [dns.CNAME]
    assert value(srv._answer(b"db.c", dns.AAAA)) == ([], [], [])  # the name is held: no data
    failure(srv._answer(b"nobody.c", dns.A), error.AuthoritativeDomainError)
    assert srv.stat()["nxdomain"] == 1


@pytest.mark.parametrize("text, parsed", [("127.0.0.1:5353", ("127.0.0.1", 5353)),
                                          ("[::1]:53", ("::1", 53)), ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_addr(text, parsed):
    assert parse_addr(text) == parsed


@pytest.mark.parametrize("text", ["localhost:53", "127.0.0.1", "127.0.0.1:70000", "::1:53", "1.2.3.4:x"])
def test_bad_addr(text):
    with pytest.raises(errors.Invalid):
        parse_addr(text)
