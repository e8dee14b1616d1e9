#!/usr/bin/env python3
"""Echo bot for goTalk: answers every message it receives with "echo: <text>".

    GOTALK_PASSWORD=echo-bot-pw python3 clients/python/examples/echo_bot.py --server 127.0.0.1:9000 --user echo --register

It rides out dropped connections and server restarts. When it cannot go on
(it cannot reach the server at start, or the server no longer knows its
account), it prints one line saying why and exits with status 1.
"""

import argparse
import os
import sys

try:  # the installed package (pip install ./clients/python) ...
    from gotalk_client import Client, Conflict, GotalkError, parse_server
except ImportError:  # ... else the module file in the directory above
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from gotalk_client import Client, Conflict, GotalkError, parse_server


def main():
    try:
        return run()
    except GotalkError as exc:
        print("echo bot stopped: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run():
    ap = argparse.ArgumentParser(description="goTalk echo bot")
    ap.add_argument("--server", default="127.0.0.1:9000")
    ap.add_argument("--user", default="echo")
    ap.add_argument("--password", default=os.environ.get("GOTALK_PASSWORD"), required=False)
    ap.add_argument("--register", action="store_true", help="create the account if needed")
    args = ap.parse_args()
    if not args.password:
        ap.error("give --password or set GOTALK_PASSWORD")

    with Client(*parse_server(args.server)) as bot:
        if args.register:
            try:
                bot.register(args.user, args.password)
            except Conflict:
                pass  # already there
        bot.login(args.user, args.password)
        print("echo bot %s ready" % args.user, flush=True)
        for msg in bot.messages(reconnect_for=None):  # acknowledged as we go
            if msg["from"] == args.user:
                continue  # never answer ourselves
            try:
                # client_id: if we crash and get this message again, no second echo
                bot.send(msg["from"], "echo: " + msg["content"], client_id="echo-%d" % msg["id"])
            except GotalkError as exc:
                print("could not answer %s: %s" % (msg["from"], exc), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
