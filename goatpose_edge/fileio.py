"""Files a command writes: checked against what it reads before any work, and written atomically.

Two mechanisms every command shares:

- ``IOPlan`` (``check_io``): the inputs and outputs of one command, checked before the work starts. An output that is
  the same file as an input (resolved paths and ``os.path.samefile``, so relative spellings, symlinks and hard links
  count), two outputs that are one file, an output that is a folder, has the wrong ending, or lies in a folder that
  is missing or not writable: each is one line (``OutputPathError``). The inputs are then *protected* for the rest of
  the process, so a name derived later (a default engine name, a sidecar) that hits one is refused by
  ``atomic_output`` too, before anything is replaced.
  Inputs are checked to be what they are declared as (a regular file, or a folder): a missing one, a folder given
  as a file, a FIFO or a device is one line saying which (``Expect``).
- Derived names (a sidecar, ``NAME.md`` beside ``NAME.json``, a run's ``last.pth``) are names the user did not type:
  an existing file there is replaced only when the toolkit recognisably wrote it as that kind of output (``Kind``);
  anything else is refused, naming the file and the flag that allows it (``--overwrite``, ``--resume``).
- ``atomic_output``: an artefact appears complete under its name, or not at all, with the user's umask; a full disk
  while writing it is an ``OSError`` that names the file.

Stdlib only (device side, Python 3.6).
"""

import contextlib
import errno
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Sequence, Tuple

from goatpose_edge.errors import GoatPoseError


class OutputPathError(GoatPoseError):
    """An output path that cannot be written, or that would replace an input."""


class InputPathError(GoatPoseError):
    """An input that is missing, or not the file or folder it must be."""


@dataclass(frozen=True)
class Kind:
    """A kind of file the toolkit writes under a name the user did not type, recognised by its content."""

    what: str  # named in the refusal: "an engine sidecar of goatpose build"
    recognise: Callable[[str], bool]  # an existing regular file -> whether the toolkit wrote it as this kind


def json_record(what: str, record_format: str) -> Kind:
    """A JSON object whose ``format`` field is ``record_format`` (sidecars, bench and eval records)."""
    def recognise(path: str) -> bool:
        record = read_json(path)
        return isinstance(record, dict) and record.get("format") == record_format

    return Kind(what, recognise)


def read_json(path: str, limit: int = 1 << 30):
    """The JSON value in ``path``, or None when it is unreadable, not JSON or larger than ``limit`` bytes."""
    try:
        if os.path.getsize(path) > limit:
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


#: the remedy named when a derived name holds someone else's file
OVERWRITE_REMEDY = "give --overwrite to replace it, or choose another name"


@dataclass
class Output:
    """One file (or folder) a command will write.

    ``option`` names it as the user gave it ("-o", "--jsonl", "the sidecar of -o"); ``suffixes`` are the accepted
    endings (lower case, empty: any); ``folder``: the output is a folder (created when missing, in a folder that
    exists); ``create_parent``: the parent folder is created when missing (the toolkit's own default locations),
    else it must exist.
    """

    path: str
    option: str
    suffixes: Tuple[str, ...] = ()
    folder: bool = False
    create_parent: bool = False
    exist_ok: bool = True  # False: never replace an existing file (``goatpose init``)
    kind: Optional[Kind] = None  # a derived name: an existing file is replaced only when ``kind`` recognises it
    remedy: str = OVERWRITE_REMEDY  # what the refusal of an unrecognised file tells the user to do


@dataclass(frozen=True)
class Expect:
    """What an input must be: a regular file (default) or a folder; ``missing`` says its absence ({path},
    {option})."""

    folder: bool = False
    missing: str = "{option} {path}: not found"


FILE = Expect()
FOLDER = Expect(folder=True)
#: declared as an input only so that no output replaces it (a sidecar the runner reads and explains itself)
PROTECT_ONLY = None


def not_a_file(path: str, folder: bool = False) -> Optional[str]:
    """Why ``path`` is not what an input of this sort must be ("is a folder, not a file", "is a FIFO (named pipe),
    not a regular file", ...), or None when it is one; "not found" when nothing is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return "cannot be read ({})".format(exc.strerror or exc)
    if stat.S_ISDIR(mode) == folder and (folder or stat.S_ISREG(mode)):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if stat.S_ISREG(mode):
        return "is a file, not a folder"
    what = next((what for test, what in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                                         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
                 if test(mode)), "something else")
    return "is {}, not {}".format(what, "a folder" if folder else "a regular file")


@dataclass
class IOPlan:
    """What one command reads (``(option, path)`` pairs; files or folders) and writes.

    ``overwrite``: the user allowed replacing any file under a derived name (``--overwrite``): kinds are not checked.
    """

    inputs: List[Tuple[str, str]] = field(default_factory=list)
    outputs: List[Output] = field(default_factory=list)
    expected: List[Tuple[str, str, Expect]] = field(default_factory=list)
    overwrite: bool = False

    def read(self, option: str, *paths: Optional[str], expect: Optional[Expect] = FILE) -> "IOPlan":
        """Inputs: each must be what ``expect`` says before any work (``PROTECT_ONLY``: never replaced, not
        checked)."""
        for path in paths:
            if path:
                self.inputs.append((option, path))
                if expect is not None:
                    self.expected.append((option, path, expect))
        return self

    def write(self, path: Optional[str], option: str, suffixes: Sequence[str] = (), **kwargs) -> "IOPlan":
        if path is not None:
            self.outputs.append(Output(path, option, tuple(suffixes), **kwargs))
        return self

    def check(self) -> "IOPlan":
        for option, path, expect in self.expected:
            problem = not_a_file(path, expect.folder)
            if problem == "not found":
                raise InputPathError(expect.missing.format(option=option, path=path))
            if problem:
                raise InputPathError("{} {} {}".format(option, path, problem))
        outputs = self.outputs
        if self.overwrite:
            outputs = [replace(o, kind=None) for o in outputs]
        check_io(outputs, self.inputs)
        protect_inputs(p for _, p in self.inputs)
        return self


def same_file(a: str, b: str) -> bool:
    """One file under two spellings: equal resolved paths, or (both existing) the same inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def _nearest_existing(folder: str) -> str:
    while folder and not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def _check_writable_folder(folder: str, option: str, path: str, create: bool) -> None:
    if os.path.isdir(folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputPathError("{} {}: cannot write in folder {} (permission denied)".format(option, path, folder))
        return
    existing = _nearest_existing(folder)
    if os.path.exists(folder) or (existing and not os.path.isdir(existing)):
        raise OutputPathError("{} {}: {} is a file, not a folder".format(option, path, existing or folder))
    if not create:
        raise OutputPathError("{} {}: folder {} does not exist (create it first, or choose another path)".format(
            option, path, folder))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError("{} {}: cannot create folder {} (permission denied in {})".format(
            option, path, folder, existing))


def check_output(output: Output) -> None:
    """One output on its own: its name, ending and folder."""
    path, option = output.path, output.option
    if not path:
        raise OutputPathError("{} needs a file name".format(option))
    name = os.path.basename(path.rstrip("/" + os.sep)) if output.folder else os.path.basename(path)
    if output.folder:
        if os.path.exists(path) and not os.path.isdir(path):
            raise OutputPathError("{} {} is a file; give a folder".format(option, path))
        target = os.path.abspath(path.rstrip("/" + os.sep) or path)
        if os.path.isdir(target):
            _check_writable_folder(target, option, path, False)
        else:  # the folder itself is created; its parent must exist unless it is a default location
            _check_writable_folder(os.path.dirname(target), option, path, output.create_parent)
        return
    if not name or path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise OutputPathError("{} {} is a folder; give a file name".format(option, path))
    if output.suffixes and not name.lower().endswith(output.suffixes):
        raise OutputPathError("{} {}: expected a {} file".format(option, path, " or ".join(output.suffixes)))
    if os.path.exists(path) and not os.path.isfile(path):
        raise OutputPathError("{} {} exists and is not a regular file".format(option, path))
    if os.path.exists(path) and not output.exist_ok:
        raise OutputPathError("{} {} exists and would be replaced; delete it first or choose another name".format(
            option, path))
    if output.kind is not None and os.path.isfile(path) and not output.kind.recognise(path):
        raise OutputPathError("refusing to replace {} ({}): it is not {}; {}".format(
            path, option, output.kind.what, output.remedy))
    _check_writable_folder(os.path.dirname(os.path.abspath(path)), option, path, output.create_parent)


def check_io(outputs: Sequence[Output], inputs: Sequence[Tuple[str, str]] = ()) -> None:
    """Refuse, in one line, any output that cannot be written or that would replace an input or another output."""
    for index, output in enumerate(outputs):
        for option, path in inputs:
            if same_file(output.path, path):
                raise OutputPathError("refusing to write {} {}: it is the input {} {}; choose another name".format(
                    output.option, output.path, option, path))
        for other in outputs[:index]:
            if same_file(output.path, other.path):
                raise OutputPathError("{} and {} both name {}; give them different names".format(
                    other.option, output.option, output.path))
        check_output(output)


#: inputs of the running command (``IOPlan.check``); ``atomic_output`` never replaces one of them
_PROTECTED = []  # type: List[str]


def protect_inputs(paths) -> None:
    _PROTECTED.extend(os.path.abspath(p) for p in paths if p)


def clear_protected() -> None:
    del _PROTECTED[:]


def refuse_if_input(path: str, what: str = "output") -> None:
    """Raise if ``path`` is one of the running command's inputs (a derived name that hit one)."""
    for protected in _PROTECTED:
        if same_file(path, protected):
            raise OutputPathError("refusing to write {} {}: it is an input of this command; choose another "
                                  "name".format(what, path))


def _umask() -> int:
    """The process umask, read without changing it where Linux says it (/proc/self/status, kernel >= 4.7); else by
    the set-and-restore swap (briefly 022 for this process)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_mode(tmp_path: str, target: str) -> None:
    """Give a file made by mkstemp (always 0600) the mode the user expects: an existing target's own mode (it is
    replaced, not loosened), else what a plain ``open`` would make: 0666 less the umask."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp_path, mode)


def append_line(path: str, line: str) -> None:
    """Append ``line`` and a newline to a log (``log.jsonl``): the log keeps whole lines only, and a full disk is an
    ``OSError`` that names it."""
    start = None
    try:
        with open(path, "a") as f:
            start = f.tell()
            f.write(line + "\n")
    except OSError as exc:  # from the write, or from the flush when the file closes
        if start is not None:
            with contextlib.suppress(OSError):
                os.truncate(path, start)
        raise OSError(exc.errno, exc.strerror, path) from exc


@contextlib.contextmanager
def atomic_output(path: str, create_parent: bool = True):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on any error delete it.

    The temporary file lives in the destination folder so the final ``os.replace`` is atomic (same filesystem), and
    it keeps the destination's suffix so writers that infer the format from it (torch, onnx, OpenCV) still work.
    It gets the replaced file's mode, or the user's umask for a new one (mkstemp's 0600 would hide artefacts from
    other users of a container).
    """
    refuse_if_input(path)
    check_output(Output(path, "output", create_parent=create_parent))
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise OutputPathError("cannot create the output folder {}: {}".format(directory, exc.strerror)) from exc
    base, suffix = os.path.splitext(os.path.basename(path))
    try:
        handle, tmp_path = tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp" + suffix, dir=directory)
    except OSError as exc:
        raise OutputPathError("cannot write to {}: {}".format(directory, exc.strerror)) from exc
    os.close(handle)
    try:
        apply_mode(tmp_path, path)
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and exc.filename != path:
            raise OSError(exc.errno, exc.strerror, path) from exc  # a write() failure names no file: say which
        raise
