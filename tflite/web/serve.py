#!/usr/bin/env python3
"""Local static server for the FastSal web demo (standard library only).

    python tflite/web/serve.py [--port 8000] [--host 127.0.0.1] [--mount /models/=DIR ...]

Serves this folder (index.html, fastsal.js, node_modules/ from `npm ci`) with the right MIME type for
.wasm / .js and the cross-origin-isolation headers (COOP / COEP) that the threaded LiteRT.js build needs
(?threads=N). `--mount PREFIX=DIR` serves DIR under the URL prefix PREFIX (e.g. a folder of .tflite
files: open http://127.0.0.1:8000/?model=/models/fastsal_A_fp32.tflite). Without ?model= the page loads
fastsal.tflite from this folder.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import pathlib
import posixpath
import urllib.parse

HERE = pathlib.Path(__file__).resolve().parent


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
        ".json": "application/json", ".tflite": "application/octet-stream", ".map": "application/json",
    }
    mounts: dict = {}
    quiet = False

    def __init__(self, *args, directory=None, mounts=None, quiet=False, **kwargs):
        self.mounts = dict(mounts or {})
        self.quiet = quiet
        super().__init__(*args, directory=directory, **kwargs)

    def translate_path(self, path):
        clean = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        for prefix, folder in self.mounts.items():
            base = prefix.rstrip("/")
            if clean == base or clean.startswith(base + "/"):
                parts = [p for p in clean[len(base):].split("/") if p and p not in (".", "..")]
                return os.path.join(os.fspath(folder), *parts)
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):  # noqa: A002 — the base class's signature
        if not self.quiet:
            super().log_message(format, *args)


def make_server(host="127.0.0.1", port=0, directory=HERE, mounts=None, quiet=False):
    """A ThreadingHTTPServer serving `directory` (and {url prefix: folder} mounts); port 0 = a free port
    (read it back from server.server_address[1]). Call serve_forever() (e.g. in a thread) and shutdown()."""
    handler = functools.partial(Handler, directory=os.fspath(directory), mounts=mounts, quiet=quiet)
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--mount", action="append", default=[], metavar="PREFIX=DIR",
                        help="serve DIR under the URL prefix PREFIX (repeatable)")
    args = parser.parse_args(argv)
    mounts = {}
    for entry in args.mount:
        prefix, sep, folder = entry.partition("=")
        if not sep or not prefix.startswith("/") or not os.path.isdir(folder):
            parser.error(f"--mount wants /PREFIX=EXISTING_DIR, got {entry!r}")
        mounts[prefix] = folder
    if not (HERE / "node_modules" / "@litertjs" / "core" / "wasm").is_dir():
        print(f"warning: {HERE / 'node_modules'} is missing: run `npm ci` in {HERE}")
    server = make_server(args.host, args.port, HERE, mounts)
    host, port = server.server_address[:2]
    print(f"FastSal web demo on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
