"""Drive a command on a pseudo-terminal made here, as a user at a real
terminal would: tests/terminal.rs.

Usage: terminal_driver.py ACTIONS_JSON COMMAND...

ACTIONS is a list of steps done in order while the command runs:
  ["wait", TEXT]          until TEXT appears in the output (10 s at most)
  ["send", TEXT]          type TEXT (\\u0003 is ^C, \\u001a is ^Z)
  ["resize", ROWS, COLS]  change the terminal's size (SIGWINCH follows)
  ["sleep", SECONDS]
The terminal starts at 40 rows and 100 columns. At the end (the command
exited, or 20 s passed) this prints, as JSON: the output, the exit status,
and whether the terminal is in canonical mode with echo (as a shell left
it) or still raw."""
import json, os, pty, select, struct, sys, termios, fcntl, time

actions = json.loads(sys.argv[1])
cmd = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)


def resize(rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


resize(40, 100)
out = b""
done = False


def pump(seconds):
    global out, done
    end = time.time() + seconds
    while not done and time.time() < end:
        r, _, _ = select.select([fd], [], [], min(0.05, max(0, end - time.time())))
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                done = True
            out += data


for step in actions:
    kind = step[0]
    if kind == "wait":
        end = time.time() + 10
        while step[1].encode() not in out and not done and time.time() < end:
            pump(0.05)
    elif kind == "send":
        os.write(fd, step[1].encode())
    elif kind == "resize":
        resize(step[1], step[2])
    elif kind == "sleep":
        pump(step[1])
end = time.time() + 20
while not done and time.time() < end:
    pump(0.1)
# What a program reading the terminal next would find in it.
attrs = termios.tcgetattr(fd)
lflag = attrs[3]
cooked = bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO)
try:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
except ChildProcessError:
    code = None
print(json.dumps({"output": out.decode(errors="replace"), "status": code, "cooked": cooked}))
