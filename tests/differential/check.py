#!/usr/bin/env python3
"""Differential test of `floodgate serve`'s HTTP/1.1 request parsing.

Every input (the committed fuzz corpora and regressions, plus the hand-written
cases in cases.toml) is sent to a running `floodgate serve` over a fresh TCP
connection, which is then half-closed, and fed to an h11 server-side
Connection, an independent strict HTTP/1.1 parser. Only the first request is
judged. Each side gives one verdict:

  h11:       accepted   (a Request, then its body up to EndOfMessage)
             refused    (RemoteProtocolError)
             incomplete (NEED_DATA with every byte given)
  floodgate: accepted   (a final response from routing, whatever its status)
             refused    (one of proto's closing refusals: 400 "bad request",
                         413, 431, 505)
             silent     (closed without a response)

They agree when both accept, both refuse, or h11 needs more data and
floodgate says nothing. h11 judges a head only once it is complete, so an
unfinished head that floodgate refused counts as refused by h11 too when no
candidate completion (see LINE_ENDS) makes h11 accept it. Every disagreement must be listed in choices.toml,
under the deliberate choice (with its RFC clause) that explains it, with the
verdicts seen; an unlisted disagreement, a listed input that now agrees or
disagrees differently, and a listed input that no longer exists all fail.

Usage: check.py BINARY [--suggest] [--verbose] | check.py --self-test
Exit: 0 all accounted for, 1 a disagreement or stale entry, 2 usage or setup.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import selectors
import socket
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import h11

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# proto's Limits::default().max_head_bytes, given to h11 as its
# max_incomplete_event_size so the two bound an unfinished head alike.
MAX_HEAD_BYTES = 8 * 1024

# The body of proto's closing 400 (response.rs BAD_REQUEST), told apart from
# the route's 400 for a bad parameter ("bad path or query\n") by its length,
# which HEAD responses carry too.
REFUSAL_400_LENGTH = len(b"bad request\n")
REFUSAL_STATUSES = {413, 431, 505}

# The chunked_body harness sends its input as the body of this request.
CHUNKED_BODY_HEAD = (
    b"POST /echo HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n"
)

# How long one connection may take to be answered: above proto's 10 s header
# timeout, so a hang is reported rather than a timeout mistaken for a verdict.
ANSWER_TIMEOUT_S = 20.0


@dataclasses.dataclass
class Input:
    """One byte stream to compare, and where it came from."""

    key: str
    stream: bytes
    sources: list[str]


@dataclasses.dataclass(frozen=True)
class Verdict:
    kind: str  # accepted | refused | incomplete | silent
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}".strip()


def stream_key(stream: bytes) -> str:
    return "sha256:" + hashlib.sha256(stream).hexdigest()[:16]


def corpus_inputs() -> list[tuple[str, bytes]]:
    """The peer's byte stream of every committed fuzz input that has one."""
    found: list[tuple[str, bytes]] = []
    for kind in ("corpus", "regressions"):
        for path in sorted((ROOT / "fuzz" / kind / "http_connection").glob("*")):
            if path.suffix == ".md":
                continue
            data = path.read_bytes()
            # proto/src/fuzzing/http_connection.rs: byte 0 config, byte 1 the
            # number n of script bytes, n script bytes, then the stream.
            if len(data) < 2:
                continue
            n = min(data[1], len(data) - 2)
            found.append((str(path.relative_to(ROOT)), data[2 + n :]))
        for path in sorted((ROOT / "fuzz" / kind / "chunked_body").glob("*")):
            if path.suffix == ".md":
                continue
            data = path.read_bytes()
            # proto/src/fuzzing/chunked_body.rs: byte 0 config, then a
            # chunked body sent after CHUNKED_BODY_HEAD.
            if len(data) < 1:
                continue
            found.append((str(path.relative_to(ROOT)), CHUNKED_BODY_HEAD + data[1:]))
    return found


def hand_cases() -> list[tuple[str, bytes]]:
    cases = tomllib.loads((HERE / "cases.toml").read_text())["case"]
    out = []
    for case in cases:
        if ("send" in case) == ("send_hex" in case):
            raise SystemExit(f"cases.toml: {case['name']}: give send or send_hex")
        if "send" in case:
            stream = case["send"].encode("utf-8")
        else:
            stream = bytes.fromhex(case["send_hex"])
        if "filler" in case:
            # `@@` in the bytes stands for `times` copies of `filler`.
            filler = case["filler"].encode("utf-8") * case["times"]
            stream = stream.replace(b"@@", filler)
        out.append((case["name"], stream))
    return out


def all_inputs() -> list[Input]:
    """Hand cases first (keyed by name), then corpus streams (by hash), one
    entry per distinct stream."""
    by_stream: dict[bytes, Input] = {}
    names = set()
    for name, stream in hand_cases():
        if name in names:
            raise SystemExit(f"cases.toml: case {name!r} twice")
        names.add(name)
        if stream in by_stream:
            by_stream[stream].sources.append(f"case {name}")
            continue
        by_stream[stream] = Input(f"case:{name}", stream, [f"case {name}"])
    for source, stream in corpus_inputs():
        if stream in by_stream:
            by_stream[stream].sources.append(source)
        else:
            by_stream[stream] = Input(stream_key(stream), stream, [source])
    return list(by_stream.values())


def h11_verdict(stream: bytes) -> Verdict:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    # An empty receive_data means EOF to h11; EOF is not given, so "needs
    # more data" can be seen.
    if stream:
        conn.receive_data(stream)
    request = None
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return Verdict("incomplete", "head" if request is None else "body")
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                return Verdict("accepted")
            elif not isinstance(event, h11.Data):
                raise AssertionError(f"h11 gave {event!r} before the first request ended")
    except h11.RemoteProtocolError as e:
        return Verdict("refused", str(e))


# h11 judges a head only once its blank line has arrived, where httparse
# refuses at the first byte no request could continue with. So when h11
# needs more of the head and floodgate has refused, h11 is asked about
# completions of the prefix: one that makes a request h11 accepts means
# floodgate refused too early. Each completion finishes a request line cut
# at any point (in the method, the target, the version) or a header line
# (in the name, after the colon, in the value, or not begun), then ends the
# head, with a Host added in case that is all the prefix lacks. Every prefix
# of a valid head has one among them (check.py --self-test).
LINE_ENDS = [b"", b"1", b".1", b"1.1", b"/1.1", b"P/1.1", b"TP/1.1", b"TTP/1.1",
             b"HTTP/1.1", b" HTTP/1.1", b"x HTTP/1.1", b" / HTTP/1.1", b"GET / HTTP/1.1",
             b": x", b"x", b"Host: x"]
HEAD_ENDS = [b"\r\n\r\n", b"\r\nHost: x\r\n\r\n", b"\n\r\n", b"\nHost: x\r\n\r\n"]


def h11_completable(prefix: bytes) -> bytes | None:
    """A completion of `prefix` into a request head h11 accepts, if any of
    the candidates is one."""
    for line_end in LINE_ENDS:
        for head_end in HEAD_ENDS:
            completion = line_end + head_end
            if h11_verdict(prefix + completion).kind == "accepted":
                return completion
    return None


def response_head(buf: bytes) -> tuple[int, int | None, int] | None:
    """The first final response head at the front of `buf`: (status,
    Content-Length, bytes used), skipping 1xx interim responses; None while
    incomplete."""
    pos = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return None
        lines = buf[pos:end].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        pos = end + 4
        if status >= 200:
            return status, length, pos


def floodgate_verdict(addr: tuple[str, int], stream: bytes) -> Verdict:
    """Sends `stream` on a fresh connection, half-closes, and reads until the
    first final response head or the server's close. Reading and writing are
    interleaved, so a server that answers before reading everything never
    deadlocks against a blocked send."""
    sock = socket.create_connection(addr, timeout=ANSWER_TIMEOUT_S)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    pending = memoryview(stream)
    received = b""
    writing = True
    try:
        while True:
            if writing and not pending:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                writing = False
                sel.modify(sock, selectors.EVENT_READ)
            ready = sel.select(ANSWER_TIMEOUT_S)
            if not ready:
                return Verdict("hang", f"after {len(received)} bytes")
            _, mask = ready[0]
            if mask & selectors.EVENT_WRITE and writing:
                try:
                    pending = pending[sock.send(pending) :]
                except (BrokenPipeError, ConnectionResetError):
                    pending = pending[:0]
            if mask & selectors.EVENT_READ:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                received += chunk
                if response_head(received) is not None:
                    break
    finally:
        sel.close()
        sock.close()
    head = response_head(received)
    if head is None:
        if received:
            return Verdict("garbled", repr(received[:80]))
        return Verdict("silent")
    status, length, _ = head
    if status in REFUSAL_STATUSES or (status == 400 and length == REFUSAL_400_LENGTH):
        return Verdict("refused", str(status))
    return Verdict("accepted", str(status))


def judge(stream: bytes, floodgate_side: Verdict) -> Verdict:
    """h11's verdict on `stream`, where an unfinished head that floodgate
    refused counts as refused if no candidate completion makes it valid."""
    h = h11_verdict(stream)
    if h == Verdict("incomplete", "head") and floodgate_side.kind == "refused":
        completion = h11_completable(stream)
        if completion is None:
            return Verdict("refused", "whatever completes the head")
        return Verdict("incomplete", f"head, valid if followed by {completion!r}")
    return h


def agree(h11_side: Verdict, floodgate_side: Verdict) -> bool:
    pairs = {("accepted", "accepted"), ("refused", "refused"), ("incomplete", "silent")}
    return (h11_side.kind, floodgate_side.kind) in pairs


def preview(stream: bytes, limit: int = 100) -> str:
    text = stream[:limit].decode("latin-1")
    # Escaped for a TOML literal string, which has no escapes of its own.
    escaped = text.encode("unicode_escape").decode("ascii").replace("'", "\\x27")
    return escaped + ("..." if len(stream) > limit else "")


def load_choices() -> tuple[list[dict], dict[str, tuple[str, dict]]]:
    """The choices, and for each listed input its choice id and entry."""
    doc = tomllib.loads((HERE / "choices.toml").read_text())
    listed: dict[str, tuple[str, dict]] = {}
    for choice in doc.get("choice", []):
        for field in ("id", "rfc", "floodgate", "h11", "why"):
            if field not in choice:
                raise SystemExit(f"choices.toml: a choice without {field}")
        for entry in choice.get("inputs", []):
            if entry["input"] in listed:
                raise SystemExit(f"choices.toml: {entry['input']} listed twice")
            listed[entry["input"]] = (choice["id"], entry)
    return doc.get("choice", []), listed


def start_server(binary: str, log) -> tuple[subprocess.Popen, tuple[str, int]]:
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    line = server.stdout.readline() if server.stdout else ""
    if not line.startswith("listening on "):
        server.kill()
        raise SystemExit(f"{binary} serve printed {line!r}, not `listening on ADDR`")
    host, _, port = line.removeprefix("listening on ").strip().rpartition(":")
    return server, (host, int(port))


def self_test() -> int:
    """Every prefix of these valid heads must be completable, or the
    completion rule could take an early refusal of a valid prefix for
    agreement."""
    heads = [
        b"POST /echo HTTP/1.1\r\nHost: x\r\nX-A: b c\r\n",
        b"GET http://a/ HTTP/1.0\nX: 1\n",
        b"OPTIONS * HTTP/1.1\r\nHost:\r\n",
        b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nX:\r\n",
    ]
    missing = [
        head[:cut]
        for head in heads
        for cut in range(len(head) + 1)
        if h11_completable(head[:cut]) is None
    ]
    for prefix in missing:
        print(f"FAIL no candidate completes {prefix!r}")
    print(f"self-test: {len(missing)} prefixes without a completion")
    return 1 if missing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binary", nargs="?", help="the floodgate binary to run as `serve`")
    parser.add_argument(
        "--suggest",
        action="store_true",
        help="print a choices.toml entry for each unlisted disagreement",
    )
    parser.add_argument("--verbose", action="store_true", help="print every verdict")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check that every prefix of some valid heads has a completion, and exit",
    )
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if args.binary is None:
        parser.error("give the floodgate binary (or --self-test)")

    inputs = all_inputs()
    choices, listed = load_choices()
    # The server's log is shown only if it dies during the run.
    log = tempfile.TemporaryFile(mode="w+")
    server, addr = start_server(args.binary, log)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda i: floodgate_verdict(addr, i.stream), inputs))
        if server.poll() is not None:
            log.seek(0)
            print(f"floodgate serve exited with {server.returncode} during the run:")
            print(log.read())
            return 1
    finally:
        server.terminate()
        server.wait(timeout=30)

    failures = []
    agreed = 0
    explained: dict[str, int] = {}
    seen = set()
    for item, f in zip(inputs, answers):
        h = judge(item.stream, f)
        seen.add(item.key)
        if args.verbose:
            print(f"{item.key}: h11 {h}; floodgate {f}")
        entry = listed.get(item.key)
        if agree(h, f):
            agreed += 1
            if entry:
                failures.append(
                    f"{item.key} is listed under {entry[0]} but now agrees "
                    f"(h11 {h}; floodgate {f}): remove it from choices.toml"
                )
            continue
        if entry is None:
            failures.append(
                f"unlisted disagreement {item.key} ({', '.join(item.sources)}):\n"
                f"    h11 {h}; floodgate {f}\n    sends \"{preview(item.stream)}\""
            )
            if args.suggest:
                print(
                    f'  {{ input = "{item.key}", h11 = "{h.kind}", '
                    f"floodgate = \"{f}\", sends = '{preview(item.stream, 60)}' }},"
                )
            continue
        choice_id, listed_entry = entry
        if (listed_entry["h11"], listed_entry["floodgate"]) != (h.kind, str(f)):
            failures.append(
                f"{item.key} ({choice_id}) is listed as h11 {listed_entry['h11']}; "
                f"floodgate {listed_entry['floodgate']}, but now h11 {h}; floodgate {f}"
            )
            continue
        explained[choice_id] = explained.get(choice_id, 0) + 1
    for key, (choice_id, _) in listed.items():
        if key not in seen:
            failures.append(f"{key} is listed under {choice_id} but is no input any more")

    total = len(inputs)
    print(
        f"differential: {total} distinct inputs, {agreed} agree, "
        f"{sum(explained.values())} differ as listed, {len(failures)} problems"
    )
    for choice in choices:
        print(f"  {choice['id']} ({choice['rfc']}): {explained.get(choice['id'], 0)} inputs")
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
