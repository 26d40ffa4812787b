"""Every command's one-line usage and help: plain Python, so ``circuit VERB --help`` and
``circuit help`` answer without a host and without loading Twisted."""

# name: (arguments, what it does)
VERBS = {
    "ls": ("[-l] [PATH...]", "list hosts, a host's folders, elements; -l adds modes, and each "
                              "element's kind and state"),
    "peek": ("PATH", "an element's stat, as JSON"),
    "mkchan": ("PATH [CAP]", "make a channel (dc/chan/NAME) with capacity CAP (default 0)"),
    "send": ("PATH", "send standard input, whole, as one message (blocks like the channel)"),
    "recv": ("PATH", "receive one message and write it to standard output (blocks)"),
    "close": ("PATH", "close a channel: receivers drain it, then see end of file"),
    "mkproc": ("[-w] PATH [-- PROGRAM ARGS...]", "make a process (dc/proc/NAME) and start it: the run "
                                                 "command as JSON on standard input, or PROGRAM ARGS; "
                                                 "-w: then wait for it to exit and print its exit "
                                                 "record (as wait does)"),
    "stdin": ("PATH", "stream standard input into a process's stdin; end of file closes it"),
    "stdout": ("PATH", "stream a process's standard output from its start (blocks until it ends)"),
    "stderr": ("PATH", "stream a process's standard error from its start"),
    "wait": ("PATH", "wait for a process to exit and print its exit record (JSON); for a select, "
                     "wait for it to commit and print which clause did"),
    "waitall": ("PATH...", "wait for every process named (on any hosts) to exit; one JSON line "
                           "each, {\"path\": ..., then its exit record}, as each exits"),
    "stop": ("HOST...", "stop hosts (/X... or circuit:// URLs): each leaves the circuit gracefully, "
                        "takes its processes down and exits; waits until it has left"),
    "join": ("URL1 [URL2]", "make two circuits one: the circuits of the hosts at URL1 and URL2 (one "
                            "of them in this circuit), or this circuit and URL1's"),
    "signal": ("SIGNAL PATH", "send a signal (TERM, KILL, 9, ...) to a running process"),
    "mkselect": ("PATH CLAUSE...", "make a select (dc/select/NAME) over clauses r:FILE or w:FILE "
                                   "(FILE a tree path, or relative to the host's dc/), and arm it"),
    "put": ("FILE", "write standard input into any file (cap, run, signal, a select's write.N ...): "
                    "one delivery"),
    "rm": ("[-f] [-r] PATH...", "remove elements (a running process is killed first) or fs/ files"),
    "events": ("", "membership changes as they happen, one JSON line each (until interrupted)"),
    "cat": ("PATH... | cat > PATH", "read files; or write standard input into one (one delivery)"),
    "echo": ("[-n] WORDS... > PATH", "write WORDS into a file (one delivery)"),
    "mkdir": ("[-p] PATH...", "make elements (dc/KIND/NAME) or fs/ directories"),
    "rmdir": ("PATH...", "remove elements or empty fs/ directories"),
    "stat": ("PATH...", "a file's type, size, mode and time"),
    "true": ("", "do nothing, successfully"),
    "help": ("[COMMAND]", "this list, or one command's usage"),
}

# The DNS server and the subscription (dc/dns/NAME, dc/subs/NAME).
VERBS.update({
    "mkdns": ("PATH [ADDR]", "make a DNS server (dc/dns/NAME), listening on ADDR (IP:PORT, UDP and TCP) "
                             "if given"),
    "set": ("PATH [LINE...]", "add records to a DNS server: zone-file lines NAME [TTL] [IN] TYPE DATA, "
                              "one an argument (or standard input); a NAME and TYPE given replace "
                              "those held"),
    "unset": ("PATH NAME [TYPE]", "remove a name's records (or only those of TYPE) from a DNS server"),
    "mksubs": ("PATH join|leave|'join leave'", "make a subscription (dc/subs/NAME) that keeps the "
                                                "cluster's joins, departures or both until read "
                                                "(read them with recv)"),
    "mk@join": ("PATH", "make a subscription to joins (mksubs PATH join)"),
    "mk@leave": ("PATH", "make a subscription to departures (mksubs PATH leave)"),
})
VERBS["recv"] = ("PATH", "receive one message from a channel, or one event from a subscription, "
                         "and write it to standard output (blocks)")

# Commands that may wait, and so take --timeout SECONDS.
WAITING = {"recv", "send", "stdout", "stderr", "wait", "events", "cat", "stdin", "put"}
WAITING |= {"waitall", "stop"}


def usage(name: str) -> str:
    args, what = VERBS[name]
    line = f"usage: {name} {args}".rstrip()
    extra = "\n  --timeout S  give up after S seconds (exit 1, nothing taken or given)" if name in WAITING else ""
    return f"{line}\n  {what}{extra}\n"


def overview(program: str = "") -> str:
    lines = [f"  {program}{name} {args}".rstrip() for name, (args, _) in VERBS.items()]
    return ("Commands (paths are circuit tree paths, /X.../dc/chan/NAME; no shell):\n"
            + "\n".join(lines) + "\n" + f"{program}COMMAND --help explains one.\n")
