"""The line PC of tests/e2e/test_field_install.py: the guide's commands, a temporary
root standing in for ``/``, the wheel and wheelhouse, and the agent started as systemd
starts its unit (see that test's docstring)."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# helpers shared with the integration tests live beside them (tests/ has no packages)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from _fake_systemd import FakeSystemd

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "install-line-pc.md"
AGENT_ID = "line2-pc1"
EQUIPMENT = {"press-1", "weld-1", "pack-1"}  # OPC UA, OPC UA, Modbus TCP
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WHEELHOUSE_COMMANDS = ("python3 -m venv wheelhouse-venv", "wheelhouse-venv/bin/pip wheel")
NOT_RUN = {
    "sudo useradd": "it would add a user to this host",
    "sudo /opt/lineside/venv/bin/pip install lineside-": "the online install: the offline "
    "path is the same install without the index, and ~11 s faster",
    "sudo chown root:lineside": "there is no lineside group here",
    "sudoedit": "the test edits the file (edit_agent_yaml)",
    "sudo systemctl": "systemd is not PID 1 here: start_unit does what it would",
}
_SYSTEM_DIR = re.compile(r"(?<![\w/.])(?=/(?:opt|etc|var/lib|usr/local|run)/)")


def guide_commands(section: int) -> list[str]:
    """The shell commands in the ``sh`` blocks of one numbered section of the guide."""
    text = GUIDE.read_text()
    found = re.search(rf"^## {section}\. .*?(?=^## |\Z)", text, re.M | re.S)
    assert found, f"{GUIDE.name} has no section {section}"
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", found.group(0), re.M | re.S):
        lines = (line.strip() for line in block.replace("\\\n", " ").splitlines())
        commands += [line for line in lines if line and not line.startswith("#")]
    return commands


def guide_paths() -> dict[str, str]:
    """The guide's "Where things live" table (before section 1): first word -> path."""
    preamble = GUIDE.read_text().partition("\n## ")[0]
    return dict(re.findall(r"^\| (\w+)[^|]*\| `([^`]+)`[^|]*\|$", preamble, re.M))


def parse_unit(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file (all sections), values in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def system_python() -> str:
    """The OS's python3 where it is 3.11+ with venv (Debian 12, Ubuntu 24.04), else the
    Python this test's virtualenv was made from."""
    probe = "import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))"
    for candidate in ("/usr/bin/python3", sys._base_executable):
        if Path(candidate).exists() and subprocess.run([candidate, "-c", probe]).returncode == 0:
            return candidate
    raise AssertionError("no Python 3.11+ with the venv module")


@dataclass
class LinePc:
    """The technician's shell: ``root`` stands in for /, ``release`` is the folder with the
    release's files (the cwd of every command)."""

    root: Path
    release: Path
    python: str
    version: str = "<version>"
    ran: list[str] = field(default_factory=list)

    def reroot(self, text: str) -> str:
        return _SYSTEM_DIR.sub(str(self.root), text)

    def command(self, section: int, start: str) -> list[str]:
        """The guide's one command starting with ``start``, ready to run here."""
        matching = [c for c in guide_commands(section) if c.startswith(start)]
        assert len(matching) == 1, f"{GUIDE.name} section {section}: {start!r}: {matching}"
        self.ran.append(matching[0])
        words = shlex.split(matching[0], comments=True)
        words = words[1:] if words[0] == "sudo" else words
        words = [word.replace("<version>", self.version) for word in words]
        return [self.python if word == "python3" else self.reroot(word) for word in words]

    def run(
        self, argv: list[str], *, stdin: str | None = None, online: bool = False
    ) -> subprocess.CompletedProcess[str]:
        if online:  # the PC with network access: this machine's pip settings apply
            env = dict(os.environ)
        else:  # the line PC: no index, no pip configuration
            env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
            env["PIP_CONFIG_FILE"] = os.devnull
        env["PATH"] = f"{self.root}/usr/local/bin:/usr/bin:/bin"  # sudo's secure_path
        env.pop("VIRTUAL_ENV", None)
        return subprocess.run(
            argv, cwd=self.release, env=env, input=stdin, capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip

    def ok(self, section: int, start: str, *extra: str, stdin: str | None = None) -> str:
        """Run the guide's command; require exit 0; its stdout."""
        done = self.run([*self.command(section, start), *extra], stdin=stdin)
        assert done.returncode == 0, f"{start}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout


@contextmanager
def build_wheel(out_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``pip wheel`` on a copy of the checkout's files (tracked and new, not ignored):
    building in place would write build/ and *.egg-info into the checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    source = out_dir / "source"
    for name in listed:
        if name and not name.startswith("tests/") and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    build = subprocess.Popen(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out_dir), str(source)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield build
    finally:
        if build.poll() is None:
            build.kill()
            build.wait(10)


def wheelhouse_cache() -> Path | None:
    """Where the dependency wheels are kept between runs; None when it cannot be made."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = base / "lineside" / "field-install-wheelhouse"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cache


def fill_wheelhouse(pc: LinePc, wheel: Path, cache: Path | None) -> None:
    """``release/wheelhouse`` as the guide's ``pip wheel`` commands make it: from the
    cache when it has this key, else by running them (and filling the cache)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"lineside-{pc.version}.dist-info/METADATA").decode()
    python_id = subprocess.run(
        [pc.python, "-c", "import sys, sysconfig; print(sys.version, sysconfig.get_platform())"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    commands = [c for c in guide_commands(2) if c.startswith(WHEELHOUSE_COMMANDS)]
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    key = hashlib.sha256("\n".join([python_id, *commands, *requires]).encode()).hexdigest()[:16]
    wheelhouse = pc.release / "wheelhouse"
    if cache is not None and (cache / key / "COMPLETE").exists():
        wheelhouse.mkdir()
        for cached in (cache / key).glob("*.whl"):
            shutil.copy2(cached, wheelhouse)
        shutil.copy2(wheel, wheelhouse)
        pc.ran += commands
        return
    for start in WHEELHOUSE_COMMANDS:
        done = pc.run(pc.command(2, start), online=True)
        assert done.returncode == 0, f"{start}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    assert [p.name for p in wheelhouse.iterdir() if p.suffix != ".whl"] == []
    if cache is not None:
        staging = cache / f"{key}.{os.getpid()}.tmp"
        staging.mkdir(parents=True)
        for made in wheelhouse.glob("*.whl"):
            if not made.name.startswith("lineside-"):  # a stale copy must never be installed
                shutil.copy2(made, staging)
        (staging / "COMPLETE").touch()
        for old in cache.iterdir():  # other keys: older dependencies or Pythons
            if old.suffix != ".tmp":
                shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(cache / key)
        except OSError:  # another run filled it first
            shutil.rmtree(staging, ignore_errors=True)


def modbus_tcp(port: int) -> str:
    """The example's Modbus TCP address line, with ``port``."""
    return f"tcp: {{host: 127.0.0.1, port: {port}}}"


def edit_agent_yaml(path: Path, edits: dict[str, str]) -> None:
    """What the technician does in sudoedit; each old text must be there exactly once."""
    text = path.read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, f"{path.name}: {old!r} found {text.count(old)} times"
        text = text.replace(old, new)
    path.write_text(text)


@dataclass
class Service:
    """The started unit: its main process, what it notified, its journal (a file)."""

    proc: subprocess.Popen[bytes]
    notify: FakeSystemd
    journal: Path

    def notified(self, message: str) -> bool:
        if self.proc.poll() is not None:
            tail = self.journal.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the service exited {self.proc.returncode}:\n{tail}")
        return message in self.notify.lines()


@contextmanager
def start_unit(pc: LinePc, unit_file: Path, journal: Path) -> Iterator[Service]:
    """Start the service as systemd would, from the settings in ``unit_file``."""
    unit = parse_unit(unit_file.read_text())
    credentials = pc.root / "run" / "credentials" / unit_file.name
    credentials.mkdir(parents=True, mode=0o700)
    for spec in unit["LoadCredential"]:
        name, _, source = spec.partition(":")
        assert Path(pc.reroot(source)).is_file(), f"status=243/CREDENTIALS: no {source}"
        shutil.copyfile(pc.reroot(source), credentials / name)
    state = pc.root / "var" / "lib" / unit["StateDirectory"][0]
    state.mkdir(parents=True, mode=0o750, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sdn-") as short:  # AF_UNIX: <= 107 bytes
        notify_path = f"{short}/notify"
        notify = FakeSystemd(notify_path)
        env = {
            "PATH": SYSTEMD_PATH,
            "LANG": "C.UTF-8",
            "CREDENTIALS_DIRECTORY": str(credentials),
            "STATE_DIRECTORY": str(state),
            "CONFIGURATION_DIRECTORY": pc.reroot(f"/etc/{unit['ConfigurationDirectory'][0]}"),
            "NOTIFY_SOCKET": notify_path,
            "WATCHDOG_USEC": str(int(unit["WatchdogSec"][0]) * 1_000_000),
        }
        for value in unit["Environment"]:
            env.update(assignment.split("=", 1) for assignment in shlex.split(value))
        argv = [pc.reroot(word) for word in shlex.split(unit["ExecStart"][0])]
        with journal.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=pc.reroot(unit["WorkingDirectory"][0]), env=env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            yield Service(proc, notify, journal)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            notify.close()
