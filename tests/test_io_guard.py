"""One guard for every command that writes: no output replaces an input, outputs are checked before any work.

The cases are generated from the parser itself: every subcommand must have a minimal command line here (a new
command fails ``test_every_command_has_a_plan`` until it gets one), and every output option it declares
(``output_flags``) is tried against every input of that command line, under several spellings of the same file.
"""

import os

import pytest

from goatpose_edge import cli
from goatpose_edge.fileio import OutputPathError, atomic_output, clear_protected, same_file

#: a minimal command line per subcommand; {name} is a file (or folder) the test creates in tmp_path
MINIMAL = {
    "info": ["info", "--all"],
    "init": ["init", "goatpose-bl", "-o", "{fresh.pth}"],
    "export": ["export", "goatpose-bl", "--weights", "{w.pth}", "--image", "{img.jpg}@0,0,10,10"],
    "verify": ["verify", "{m.onnx}", "{w.pth}"],
    "pose": ["pose", "{img.jpg}", "--pose", "{e.engine}", "--detector", "{det.onnx}"],
    "build": ["build", "{m.onnx}", "--precision", "int8", "--calib-coco", "{ann.json}", "{calib}", "--verify",
              "--image", "{img.jpg}"],
    "platform": ["platform"],
    "train": ["train", "goatpose-bl", "--train-ann", "{ann.json}", "--val-ann", "{val.json}", "--init-from",
              "{run/best.pth}"],
    "env": ["env"],
    "quantize": ["quantize", "{m.onnx}", "--calib-images", "{calib}"],
    "bench": ["bench", "{m.onnx}", "{e.engine}", "--video", "{v.avi}", "--detector", "{det.onnx}"],
    "eval": ["eval", "{e.engine}", "--coco-root", "{coco}", "--ann", "{ann.json}", "--det-json", "{det.json}"],
    "video": ["video", "{v.avi}", "--pose", "{e.engine}", "--detector", "{det.onnx}"],
    "lint": ["lint", "{m.onnx}"],
    "listen": ["listen", "mqtt://127.0.0.1:9/goatpose"],  # reads no file; --out DIR is its one output
    "dashboard": ["dashboard", "mqtt://127.0.0.1:9/goatpose", "--serve", "0"],  # reads and writes no file
}
FOLDERS = ("calib", "coco", "run")


def _scratch(prefix: str) -> str:
    """A folder for the cases made at collection time (before any fixture exists), removed when pytest exits."""
    import atexit
    import shutil
    import tempfile

    root = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, root, True)
    return root


def _subcommands():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _materialise(root, argv, content=None):
    """Create the {placeholders} of ``argv`` under ``root`` and return the real argv. Files hold ``content`` (bytes),
    by default their own name; an engine's sidecar e.json is made too (it is an input)."""
    out = []
    for arg in argv:
        while "{" in arg:
            start, end = arg.index("{"), arg.index("}")
            name = arg[start + 1:end]
            path = os.path.join(root, name)
            if name in FOLDERS:
                os.makedirs(path, exist_ok=True)
            elif name != "fresh.pth":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(("input " + name).encode() if content is None else content)
            arg = arg[:start] + path + arg[end + 1:]
        out.append(arg)
    if "e.engine" in " ".join(argv):
        with open(os.path.join(root, "e.json"), "wb") as f:
            f.write(b"input e.json" if content is None else content)
    return out


def _snapshot(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            files[path] = open(path, "rb").read() if not os.path.islink(path) else os.readlink(path)
    return files


def _plan(argv):
    args = cli.build_parser().parse_args(argv)
    return args, args.io(args)


def _collisions(root):
    """(command, argv, victim) for every output option x every input that option can hit, in three spellings."""
    cases = []
    for command, template in sorted(MINIMAL.items()):
        sub = os.path.join(root, command)
        os.makedirs(sub, exist_ok=True)
        argv = _materialise(sub, template)
        args, plan = _plan(argv)
        for flag in args.output_flags if hasattr(args, "output_flags") else ():
            stem = os.path.join(sub, "probe")
            _, probed = _plan(argv + [flag, stem])
            base = next((o for o in probed.outputs if o.path == stem), None)
            given = stem + (base.suffixes[0] if base is not None and base.suffixes else "")
            _, probed = _plan(argv + [flag, given])
            for option, victim in plan.inputs:
                values = []
                for output in probed.outputs:  # the value that makes this output (file, prefix, folder) hit it
                    if not output.path.startswith(stem) or (output.folder and output.path == given):
                        continue
                    tail = output.path[len(stem):]
                    if output.path == given:  # the option's own file
                        values.append(victim)
                    elif victim.endswith(tail):  # a name derived from it: a sidecar, NAME.json, DIR/best.pth
                        values.append(victim[:len(victim) - len(tail)] + given[len(stem):])
                for value in sorted(set(values)):
                    for spelling in SPELLINGS:
                        if spelling == "hardlink" and os.path.isdir(victim):
                            continue  # folders have no hard links
                        cases.append(("{} {} = {} ({}) {}".format(command, flag, option, os.path.basename(victim),
                                                                  spelling), argv, flag, value, victim, spelling))
    return cases


#: how a collision is spelled: the path as the inputs were given, relative to the folder it is run in, through a
#: symbolic link (to the file, or for a derived name to its folder) and through a hard link
SPELLINGS = ("as-given", "relative", "symlink", "hardlink")


@pytest.fixture(scope="module")
def io_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("io"))


def test_every_command_has_a_plan():
    for name, parser in _subcommands().items():
        assert name in MINIMAL, "add a minimal command line for `goatpose {}` to MINIMAL".format(name)
        assert callable(parser.get_default("io")), "`goatpose {}` declares no IOPlan (set_defaults(io=...))".format(
            name)


def test_every_declared_output_reaches_the_plan(io_root):
    for command, template in MINIMAL.items():
        argv = _materialise(os.path.join(io_root, "decl-" + command), template)
        args, _ = _plan(argv)
        for flag in getattr(args, "output_flags", ()):
            probe = os.path.join(io_root, "decl-" + command, "probe.x")
            _, plan = _plan(argv + [flag, probe])
            assert any(o.path.startswith(probe[:-2]) for o in plan.outputs), (command, flag)


def _run_guarded(monkeypatch, capsys, argv):
    """main(argv) with every command function replaced by one that fails: the guard must act before the work."""
    def work_started(args):
        raise AssertionError("the command started working before its outputs were checked")

    for command in cli.COMMANDS:
        monkeypatch.setattr(command, "run", work_started)
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusal, one line too
        code = exc.code
    return code, capsys.readouterr().err


def pytest_generate_tests(metafunc):
    if "collision" in metafunc.fixturenames:
        root = _scratch("goatpose-io-cases-")
        cases = _collisions(root)
        metafunc.parametrize("collision", cases, ids=[c[0] for c in cases])


def _linked(value, victim, spelling, tmp_path):
    """``value`` respelled so that the output it names reaches ``victim`` through a link made in ``tmp_path``."""
    if value == victim:  # the option's own file: a link to it
        link = str(tmp_path / ("link" + os.path.splitext(victim)[1]))
        (os.symlink if spelling == "symlink" else os.link)(victim, link)
        return link
    if spelling == "symlink":  # a derived name: its prefix, through a link to the prefix's folder
        os.symlink(os.path.dirname(value), str(tmp_path / "folder"))
        return str(tmp_path / "folder" / os.path.basename(value))
    relative = os.path.relpath(victim, os.path.dirname(value))  # a derived name reaching a hard link of the victim
    os.makedirs(os.path.dirname(str(tmp_path / relative)), exist_ok=True)
    os.link(victim, str(tmp_path / relative))
    return str(tmp_path / os.path.basename(value))


def test_no_output_replaces_an_input(collision, monkeypatch, capsys, tmp_path):
    _, argv, flag, value, victim, spelling = collision
    if spelling == "relative":
        monkeypatch.chdir(os.path.dirname(victim))
        value = os.path.relpath(value)
    elif spelling in ("symlink", "hardlink"):
        value = _linked(value, victim, spelling, tmp_path)
    before = _snapshot(os.path.dirname(os.path.dirname(victim)))
    code, err = _run_guarded(monkeypatch, capsys, argv + [flag, value])
    assert code == 1 and err.startswith("goatpose: error: refusing to write") and err.count("\n") == 1, err
    assert _snapshot(os.path.dirname(os.path.dirname(victim))) == before  # nothing replaced, nothing added


def test_the_issue_cases(tmp_path, monkeypatch, capsys):
    """The reported data losses, spelled as the user typed them."""
    monkeypatch.chdir(tmp_path)
    for name in ("bl.pth", "bl.onnx", "m.onnx", "img.jpg", "v.avi", "eng/person.json", "ev/ann.json"):
        os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
        with open(name, "w") as f:
            f.write(name)
    os.makedirs("DIR")
    before = _snapshot(str(tmp_path))
    for argv in (["export", "goatpose-bl", "--weights", "bl.pth", "-o", "bl.pth"],
                 ["build", "bl.onnx", "-o", "bl.onnx"],
                 ["build", "bl.onnx", "--timing-cache", "bl.onnx"],
                 ["quantize", "m.onnx", "--calib-images", "DIR", "-o", "m.onnx"],
                 ["pose", "img.jpg", "--pose", "m.onnx", "-o", "img.jpg"],
                 ["pose", "img.jpg", "--pose", "m.onnx", "-o", "m.onnx"],
                 ["video", "v.avi", "--pose", "m.onnx", "--jsonl", "m.onnx"],
                 ["build", "bl.onnx", "--precision", "int8", "--calib-coco", "eng/person.json", "DIR", "-o",
                  "eng/person.engine"],
                 ["eval", "m.onnx", "--coco-root", ".", "--ann", "ev/ann.json", "--out", "ev/ann"]):
        code, err = _run_guarded(monkeypatch, capsys, argv)
        assert code == 1 and "refusing to write" in err and err.count("\n") == 1, (argv, err)
    assert _snapshot(str(tmp_path)) == before


def _output_options():
    """(command, flag, an accepted ending) of every declared output option of every command."""
    root = _scratch("goatpose-io-options-")
    options = []
    for command, template in sorted(MINIMAL.items()):
        argv = _materialise(os.path.join(root, command), [a for a in template if a != "{fresh.pth}"])
        argv = argv[:-1] if command == "init" else argv  # init's -o is its own minimal output
        args, _ = _plan(argv + (["-o", os.path.join(root, "x.pth")] if command == "init" else []))
        for flag in getattr(args, "output_flags", ()):
            probe = os.path.join(root, "probe")
            _, plan = _plan(argv + [flag, probe])
            base = next((o for o in plan.outputs if o.path == probe), None)
            suffix = base.suffixes[0] if base is not None and base.suffixes else ""
            kind = "prefix" if base is None else "folder" if base.folder else "file"
            for problem in PROBLEMS:
                if problem == "wrong-extension" and not suffix:
                    continue  # --out NAME takes any name
                if problem == "folder-as-file" and kind == "folder":
                    continue  # an output folder (train --out): a folder is what it names
                options.append((command, flag, suffix, kind, problem))
    return options


PROBLEMS = ("missing-folder", "folder-as-file", "wrong-extension", "parent-is-a-file", "unwritable-folder")


@pytest.mark.parametrize("command, flag, suffix, kind, problem", _output_options(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_outputs_checked_before_the_work(command, flag, suffix, kind, problem, tmp_path, monkeypatch, capsys):
    """Every declared output option of every command, with each problem an output path can have."""
    argv = _materialise(str(tmp_path), [a for a in MINIMAL[command] if a != "{fresh.pth}"])
    if command == "init":
        argv = argv[:-1]
    value = {"missing-folder": str(tmp_path / "missing" / ("x" + suffix)),
             "folder-as-file": str(tmp_path) + os.sep,
             "wrong-extension": str(tmp_path / "x.txt"),
             "parent-is-a-file": str(tmp_path / "afile" / ("x" + suffix)),
             "unwritable-folder": str(tmp_path / "ro" / ("x" + suffix))}[problem]
    (tmp_path / "afile").write_text("a file")
    if problem == "unwritable-folder":
        (tmp_path / "ro").mkdir()
        os.chmod(str(tmp_path / "ro"), 0o555)
        if os.geteuid() == 0:  # root writes anyway: the folder answers as it would to any other user
            real_access, ro = os.access, str(tmp_path / "ro")
            monkeypatch.setattr(os, "access", lambda p, mode: False if os.path.abspath(p) == ro else real_access(
                p, mode))
    code, err = _run_guarded(monkeypatch, capsys, argv + [flag, value])
    assert code == 1 and err.startswith("goatpose: error: ") and err.count("\n") == 1, err
    assert not os.path.exists(value.rstrip(os.sep)) or os.path.isdir(value)


def test_bench_out_must_not_be_a_folder(tmp_path, monkeypatch, capsys):
    code, err = _run_guarded(monkeypatch, capsys, ["bench", "m.onnx", "--out", str(tmp_path) + "/"])
    assert code == 1 and "is a folder; give a name in it" in err


def test_init_never_replaces_a_file(tmp_path, monkeypatch, capsys):
    trained = tmp_path / "trained.pth"
    trained.write_bytes(b"weights")
    code, err = _run_guarded(monkeypatch, capsys, ["init", "goatpose-bl", "-o", str(trained)])
    assert code == 1 and "exists and would be replaced" in err and trained.read_bytes() == b"weights"


def test_derived_name_hitting_an_input_is_refused_at_write_time(tmp_path):
    """A name only known late (a default engine name) is still refused by atomic_output once inputs are protected."""
    victim = tmp_path / "input.json"
    victim.write_text("keep")
    from goatpose_edge.fileio import IOPlan

    IOPlan().read("--ann", str(victim)).check()
    try:
        with pytest.raises(OutputPathError, match="it is an input of this command"):
            with atomic_output(str(victim)) as tmp:
                open(tmp, "w").write("lost")
    finally:
        clear_protected()
    assert victim.read_text() == "keep" and os.listdir(str(tmp_path)) == ["input.json"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_output_takes_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        target = str(tmp_path / "a.onnx")
        with atomic_output(target) as tmp:
            open(tmp, "w").write("x")
    finally:
        os.umask(previous)
    assert os.stat(target).st_mode & 0o777 == mode


def test_same_file_spellings(tmp_path):
    a = tmp_path / "a.onnx"
    a.write_text("x")
    os.symlink(str(a), str(tmp_path / "s.onnx"))
    os.link(str(a), str(tmp_path / "h.onnx"))
    assert same_file(str(a), str(tmp_path / "s.onnx")) and same_file(str(a), str(tmp_path / "h.onnx"))
    assert same_file(str(a), str(tmp_path / "." / "a.onnx"))
    assert not same_file(str(a), str(tmp_path / "b.onnx"))


@pytest.mark.parametrize("command, existing, refused", [
    ("bench", {"format": "goatpose-edge-eval/1"}, True),  # an evaluation that took hours
    ("bench", {"format": "goatpose-edge-bench/1"}, False),  # its own earlier record: replaced, as -o would
    ("eval", {"format": "goatpose-edge-bench/1"}, True),
    ("eval", {"format": "goatpose-edge-eval/1"}, False),
    ("bench", ["not", "a", "record"], True),
])
def test_out_never_replaces_another_kind_of_record(command, existing, refused, tmp_path, monkeypatch, capsys):
    import json

    argv = _materialise(str(tmp_path), MINIMAL[command])
    record = tmp_path / "result.json"
    record.write_text(json.dumps(existing))
    args, plan = _plan(argv + ["--out", str(tmp_path / "result")])
    if refused:
        with pytest.raises(OutputPathError, match="refusing to replace .*result.json"):
            plan.check()
    else:
        plan.check()
    clear_protected()
    assert json.loads(record.read_text()) == existing


def test_atomic_output_keeps_a_replaced_files_mode(tmp_path):
    target = tmp_path / "private.onnx"
    target.write_text("old")
    os.chmod(str(target), 0o600)
    with atomic_output(str(target)) as tmp:
        open(tmp, "w").write("new")
    assert target.read_text() == "new" and os.stat(str(target)).st_mode & 0o777 == 0o600


def _derived_outputs():
    """(command, flag, the value given, a derived output) for every output a command names after the value given
    (a sidecar, NAME.md, DIR/last.pth): names the user did not type."""
    root = _scratch("goatpose-io-derived-")
    cases = []
    for command, template in sorted(MINIMAL.items()):
        argv = _materialise(os.path.join(root, command), template)
        args, _ = _plan(argv)
        for flag in getattr(args, "output_flags", ()):
            stem = os.path.join(root, "out", "probe")
            _, probed = _plan(argv + [flag, stem])
            base = next((o for o in probed.outputs if o.path == stem), None)
            given = stem + (base.suffixes[0] if base is not None and base.suffixes else "")
            _, probed = _plan(argv + [flag, given])
            for output in probed.outputs:
                if output.path != given and output.path.startswith(stem) and not output.folder:
                    cases.append((command, flag, given[len(stem):], output.path[len(stem):]))
    return cases


DERIVED = _derived_outputs()


def test_the_derived_names_are_found():  # the generated cases below cannot silently become none
    assert {(c, tail) for c, _, _, tail in DERIVED} >= {
        ("build", ".json"), ("build", ".calib"), ("build", ".calib.json"), ("bench", ".md"), ("bench", ".json"),
        ("bench", "_ap_fps.png"), ("eval", ".json"), ("eval", "_results.json"), ("train", "/last.pth"),
        ("train", "/best.pth"), ("train", "/log.jsonl")}


@pytest.mark.parametrize("command, flag, suffix, tail", DERIVED, ids=lambda v: v if isinstance(v, str) else None)
def test_no_derived_name_replaces_a_file_the_command_did_not_write(command, flag, suffix, tail, tmp_path,
                                                                    monkeypatch, capsys):
    """An existing file under a derived name that the toolkit did not write as that output is refused before any
    work, in one line naming it and the flag that allows it; the same argv with that flag passes the guard."""
    argv = _materialise(str(tmp_path / "in"), MINIMAL[command])
    stem = str(tmp_path / "out" / "probe")
    victim = stem + tail
    os.makedirs(os.path.dirname(victim))
    with open(victim, "w") as f:
        f.write("someone's notes\n")
    before = _snapshot(str(tmp_path))
    code, err = _run_guarded(monkeypatch, capsys, argv + [flag, stem + suffix])
    assert code == 1 and err.startswith("goatpose: error: refusing to replace {} ".format(victim)), err
    assert err.count("\n") == 1 and ("--overwrite" in err or "--resume" in err), err
    assert _snapshot(str(tmp_path)) == before
    if "--resume" in err:  # continuing that run (which starts from its own last.pth, not --init-from)
        at = argv.index("--init-from")
        argv, allow = argv[:at] + argv[at + 2:], ["--resume", stem + "/last.pth"]
    else:
        allow = ["--overwrite"]
    _plan(argv + [flag, stem + suffix] + allow)[1].check()  # allowed: the guard lets the command replace it
    clear_protected()


def _declared_inputs():
    """(command, option, placeholder) for every input a MINIMAL command line declares as a file or folder."""
    root = _scratch("goatpose-io-inputs-")
    cases = []
    for command, template in sorted(MINIMAL.items()):
        argv = _materialise(os.path.join(root, command), template)
        _, plan = _plan(argv)
        for option, path, expect in plan.expected:
            if (command, option) == ("video", "SOURCE"):
                continue  # a file, camera, URL or pipeline: video.sources.parse_source says which is wrong
            name = os.path.relpath(path, os.path.join(root, command))
            cases.append((command, option, name, "folder" if expect.folder else "file"))
    return cases


@pytest.mark.parametrize("command, option, name, kind", _declared_inputs(),
                         ids=lambda v: v if isinstance(v, str) else None)
@pytest.mark.parametrize("problem", ["missing", "folder", "fifo", "device"])
def test_inputs_are_what_they_are_declared_as(command, option, name, kind, problem, tmp_path, monkeypatch, capsys):
    """Every declared input, missing or of the wrong sort, is one line saying what it is, before any work."""
    import shutil

    argv = _materialise(str(tmp_path), MINIMAL[command])
    path = str(tmp_path / name)
    (shutil.rmtree if os.path.isdir(path) else os.remove)(path)
    said = {"missing": "not found", "folder": "is a folder", "fifo": "FIFO", "device": "character device"}[problem]
    if problem == "folder" and kind == "file":
        os.makedirs(path)
    elif problem == "fifo":
        os.mkfifo(path)
    elif problem == "device":
        argv = [a.replace(path, os.devnull) if a.startswith(path) else a for a in argv]
    elif problem == "folder":  # a folder is what it wants: give it a file instead
        open(path, "w").close()
        said = "is a file, not a folder"
    code, err = _run_guarded(monkeypatch, capsys, argv)
    if option == "--detector":  # a name or a file, told apart when the command line is parsed: a usage error
        assert code == 2 and err.startswith("goatpose {}: error: argument --detector: ".format(command)), err
    else:
        assert code == 1 and err.startswith("goatpose: error: "), err
    assert said in err and err.count("\n") == 1, err
    assert ("not found" in err) == (problem == "missing"), err


def test_append_line_on_a_full_disk_names_the_file():
    """A log line that does not fit (/dev/full: every write fails with ENOSPC) is an OSError naming the log."""
    import errno

    from goatpose_edge.fileio import append_line

    with pytest.raises(OSError) as info:
        append_line("/dev/full", '{"epoch": 0}')
    assert info.value.errno == errno.ENOSPC and info.value.filename == "/dev/full"
