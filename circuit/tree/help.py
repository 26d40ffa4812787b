"""The ``help`` files: what a host and each element kind hold."""

HOST = """\
This is circuit host {id}.
  {url}

  dc/proc/NAME/     mkdir to make a process; write a JSON command to run
  dc/chan/NAME/     mkdir to make a channel; write its cap, then send and recv
  dc/select/NAME/   mkdir to make a select; write clauses to select, cat wait
  dc/dns/NAME/      mkdir to make a DNS server; write where it listens to addr, records to set
  dc/subs/NAME/     mkdir to make a subscription; write join or leave to on, cat recv
  sys/              id, url, members, events (streams joins and departures), stat;
                    stop and join (write: stop this host, join another circuit)
  fs/               this host's exported directory ({fs_root})

Every element directory has help (what each file does) and error (its last error).

  echo stop > sys/stop        this host leaves the circuit, takes its processes down, exits
  echo URL > sys/join         this host joins the circuit of the host at URL (circuit://...):
                              the two circuits become one (same CA only)
Members only: a client certificate may not (EPERM).
"""

CHAN = """\
A channel: byte-string messages, delivered in order, each exactly once.

  cap       write the capacity once, before use (0: a send waits for its receiver)
  send      each open-write-close sends one message; close(2) blocks while full
  recv      blocks for one message; EPIPE once closed and drained
  trysend   as send, but EAGAIN instead of blocking
  tryrecv   as recv, but EAGAIN instead of blocking
  waitsend  blocks until a send would not block
  waitrecv  blocks until a receive would not block
  close     any write closes the channel: receivers drain, then EPIPE
  stat      JSON: cap, len, closed, sent, received, senders_waiting, receivers_waiting
  error     the last error on this channel
"""

PROC = """\
A process.

  run       write {"path": "/bin/ls", "args": ["-l"], "env": ["K=V"], "dir": "/", "scrub": false}
            once to start it (only path is required); read it back
  stdin     bytes written go to the process; closing the last writer closes it
  stdout    the output from the start; EOF once it has exited and all is read
  stderr    likewise
  waitexit  blocks until the process exits, then its exit record (JSON)
  signal    write a signal name or number: TERM, KILL, INT, 9, ...
  stat      JSON: cmd, pid, phase, exit, signal, started, ended, waiting (for the exit)
  env       JSON: the host daemon's environment (inherited when run gives no env)
  error     the last error on this process
"""

SELECT = """\
A select: wait for the first of several clauses, and commit that one only.

  select    write [{"op": "r", "file": "chan/c/recv"}, {"op": "w", "file": "chan/d/send"}]
            PATH: /X.../dc/..., a path inside the mount, or relative to this host's dc/
  wait      blocks until a clause commits: {"clause": N, "file": "read.N"}
  read.N    what the committed r clause read (recv: the message; waitexit: the record)
  write.N   for a committed w clause on send: write the message to send
  abort     give up; wait fails with ECANCELED; an unread message goes back
  stat      JSON: state, clauses, the committed clause
  error     the last error on this select
"""

DNS = """\
A DNS server on this host, answering from the records set here (UDP and TCP).

  addr      write IP:PORT to listen there (127.0.0.1:5353; port 0 picks one); again to move;
            read it back as bound
  set       write zone-file lines, NAME [TTL] [IN] TYPE DATA (A, AAAA, CNAME, SRV, TXT, MX,
            NS): each NAME and TYPE written replaces the records held for them; all or nothing
  unset     write NAME, or NAME TYPE: remove its records
  records   the records held, as zone-file lines
  stat      JSON: addr, listening, names, records, queries, nxdomain
  error     the last error on this server

Names not set answer NXDOMAIN; it does not recurse.  rmdir stops it and frees the port.
"""

SUBS = """\
A subscription: the cluster's joins or departures, each kept from the moment it was made
until one reader has read it, in order.

  on        write join, leave, or join leave (once): what it keeps; read it back
  recv      blocks for the next event, one JSON line as sys/events shows it:
            {"joined": "X...", "url": "circuit://..."} or {"left": "X...", "reason": "left"}
            (reason: left, a graceful leave; failed, declared dead)
  stat      JSON: on, len (waiting to be read), cap, heard, received, dropped,
            receivers_waiting
  error     the last error on this subscription

At most 1000 events wait; when one more arrives the oldest is dropped and counted in stat.
"""

KINDS = {"chan": CHAN, "proc": PROC, "select": SELECT, "dns": DNS, "subs": SUBS}
