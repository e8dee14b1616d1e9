"""The chat's prompt is drawn once, whoever writes first.

A message printed by the receiving thread can come while the main thread is
about to show its prompt. It used to redraw the prompt it expected to be on
the screen, and readline then drew it too: `> > `. Here input() is replaced
by a stand-in that lets such a message in before it draws the prompt, as
readline does, and calls the pre-input hook after, as readline does; no
timing is involved."""

import sys

from gotalk_client import Chat


class Readline:
    """What the chat uses of the readline module."""

    def __init__(self):
        self.hook = None

    def set_pre_input_hook(self, hook):
        self.hook = hook

    def get_line_buffer(self):
        return ""


class Client:
    user = {"username": "alice"}
    _closed = False

    def messages(self, reconnect_for=None):
        return iter(())


def test_a_message_that_comes_before_the_prompt_is_up_does_not_double_it(monkeypatch, capsys):
    chat = Chat(Client(), "bob")
    chat.tty = True
    chat.readline = Readline()
    calls = []

    def fake_input(prompt):
        calls.append(prompt)
        if len(calls) > 1:
            raise EOFError
        chat.show("[12:00] bob: early")  # the receiving thread wins the race
        sys.stdout.write(prompt)  # readline draws the prompt...
        if chat.readline.hook:
            chat.readline.hook()  # ...then calls the pre-input hook
        chat.show("[12:00] bob: later")  # a message while the prompt is up
        return ""

    monkeypatch.setattr("builtins.input", fake_input)
    chat.run()
    out = capsys.readouterr().out
    assert "to bob> to bob> " not in out, repr(out)
    assert out.endswith(
        "[12:00] bob: early\nto bob> \r\x1b[2K[12:00] bob: later\nto bob> "), repr(out)


def test_logged_in_is_said_before_the_backlog_can_print(monkeypatch):
    # The backlog prints from the receiving thread: "logged in as" must be
    # on the screen before that thread starts, not raced against it.
    chat = Chat(Client(), "bob")
    shown = []
    at_start = []
    monkeypatch.setattr(chat, "show", shown.append)
    start = chat.start_receiving
    monkeypatch.setattr(chat, "start_receiving", lambda: (at_start.append(list(shown)), start()))
    monkeypatch.setattr("builtins.input", lambda prompt: (_ for _ in ()).throw(EOFError))
    chat.run()
    assert len(at_start) == 1 and at_start[0][:1] == ["logged in as alice. /help for commands"], (
        at_start)
