"""The network lab's name server and web servers, run as root inside the
lab's own namespaces (by tests/common/lab.rs and bench/net.sh), never on
the machine's own network.

    lab.py DIR [--dns ADDR] [--https ADDR]... [--http ADDR]...

DIR holds:
  names.json   {"name": "address" or ["address", ...], ...}, read again at
               every query, so that a test can move a name during a run;
  queries.log  the name of every query received, appended one a line
               (lower case, no trailing dot), before it is answered;
  cert.pem, key.pem  the web servers' certificate and key.

- DNS on ADDR:53, UDP and TCP: A records from names.json with a TTL of
  1 s; a listed name asked for another type gets an empty answer (NODATA),
  an unlisted name NXDOMAIN.
- HTTPS on each ADDR:443: a GET gets "tls SNI at ADDR", SNI being the
  server name the client sent in its ClientHello, or "none".
- HTTP on each ADDR:80: a GET gets "http HOST at ADDR", HOST being the
  Host header without its port (or "none").
- Both answer anything that isn't HTTP with an "HTTP/1.1 400 ..." line.

Every socket is bound and listening before the servers start, so a ready
check can count listening sockets (ss) and find all of them or none.
"""

import argparse
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--dns")
ap.add_argument("--https", action="append", default=[])
ap.add_argument("--http", action="append", default=[])
args = ap.parse_args()
NAMES = os.path.join(args.dir, "names.json")
LOG = os.path.join(args.dir, "queries.log")
log_lock = threading.Lock()

# DNS ------------------------------------------------------------------------

NOERROR, FORMERR, NXDOMAIN = 0, 1, 3
TYPE_A, CLASS_IN = 1, 1


def lookup(name):
    """The addresses of `name` in names.json, or None when it isn't there."""
    try:
        with open(NAMES) as f:
            names = json.load(f)
    except (OSError, ValueError):
        names = {}
    found = names.get(name)
    if found is None:
        return None
    return [found] if isinstance(found, str) else list(found)


def answer(query):
    """The reply to one DNS message, or None when it can't be parsed."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(query):
            return None
        n = query[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(query):
            return None
        labels.append(query[i : i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(query):
        return None
    qtype, qclass = struct.unpack("!HH", query[i : i + 4])
    question = query[12 : i + 4]
    name = ".".join(labels).lower()
    with log_lock, open(LOG, "a") as f:
        f.write(name + "\n")
    addrs = lookup(name)
    records = b""
    if addrs is None:
        rcode, count = NXDOMAIN, 0
    elif qtype == TYPE_A and qclass == CLASS_IN:
        rcode, count = NOERROR, len(addrs)
        for a in addrs:
            # The name is a pointer to the question's (offset 12); TTL 1.
            records += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 1, 4)
            records += socket.inet_aton(a)
    else:
        rcode, count = NOERROR, 0
    # QR, the query's opcode and RD, AA and RA; one question, no authority
    # or additional records (an EDNS OPT record in the query is ignored).
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    header = struct.pack("!HHHHHH", qid, reply_flags, 1, count, 0, 0)
    return header + question + records


class DnsUdp(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        reply = answer(data)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class DnsTcp(socketserver.BaseRequestHandler):
    def handle(self):
        f = self.request.makefile("rb")
        while True:
            head = f.read(2)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            query = f.read(n)
            if len(query) < n:
                return
            reply = answer(query)
            if reply is None:
                return
            self.request.sendall(struct.pack("!H", len(reply)) + reply)


class Quiet:
    """A client that goes away mid-reply (a probe that read its first
    line, a refused connection) is no error worth a traceback."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class UdpServer(Quiet, socketserver.ThreadingUDPServer):
    daemon_threads = True


class TcpServer(Quiet, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


# HTTP and HTTPS ---------------------------------------------------------------


class Web(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Not HTTP/0.9 (a reply without a status line): a client that speaks
    # something else gets "HTTP/1.1 400 ..." as its first line.
    default_request_version = "HTTP/1.0"
    # TCP_NODELAY: with Nagle's algorithm, the reply's first write waits
    # for the client to acknowledge the TLS 1.3 session tickets sent after
    # the handshake, which it delays by 40 ms (bench/net.sh measures the
    # time to the first byte).
    disable_nagle_algorithm = True

    def do_GET(self):
        addr = self.server.server_address[0]
        if isinstance(self.request, ssl.SSLSocket):
            sni = getattr(self.request, "sni", None) or "none"
            body = f"tls {sni} at {addr}\n"
        else:
            host = self.headers.get("Host") or "none"
            host = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
            body = f"http {host} at {addr}\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def remember_sni(sock, name, _ctx):
    sock.sni = name


tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(os.path.join(args.dir, "cert.pem"), os.path.join(args.dir, "key.pem"))
tls.sni_callback = remember_sni


class WebServer(Quiet, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def server_bind(self):
        # Not HTTPServer's, which looks the address up (getfqdn): a reverse
        # query to the lab's name server, which doesn't answer yet.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class TlsServer(WebServer):
    def finish_request(self, request, client_address):
        # The handshake runs here, in the connection's own thread, so that a
        # client that stops half-way (a refused connection) holds up no other.
        try:
            request.settimeout(10)
            request = tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        super().finish_request(request, client_address)


servers = []
if args.dns:
    servers.append(UdpServer((args.dns, 53), DnsUdp))
    servers.append(TcpServer((args.dns, 53), DnsTcp))
servers += [TlsServer((a, 443), Web) for a in args.https]
servers += [WebServer((a, 80), Web) for a in args.http]
for s in servers[:-1]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
if servers:
    servers[-1].serve_forever()
