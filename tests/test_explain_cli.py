"""``convbench explain``: files mode, backends mode, and the bad inputs each refused in one line."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.lib import format as npy_format

import convbench
from convbench.backends.base import BackendUnavailable
from convbench.cli import explain_cmd, main
from convbench.cli.explain_cmd import NpyError, read_npy
from convbench.spec import ConvSpec
from tests.test_explain import case, conv


def test_cli_with_npy_files(tmp_path) -> None:
    image, kernel = case(kshape=(4, 4))
    arrays = {
        "image": image,
        "kernel": kernel,
        "actual": conv(image, kernel),
        "expected": conv(image, kernel, op="convolve"),
        "noise": np.random.default_rng(1).standard_normal(image.shape),
    }
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
    files = {name: str(tmp_path / f"{name}.npy") for name in arrays}
    inputs = ["--image", files["image"], "--kernel", files["kernel"]]
    result = CliRunner().invoke(main, ["explain", files["actual"], files["expected"], *inputs])
    assert result.exit_code == 0, result.output
    assert "cross-correlation" in result.output and "even kernel" in result.output
    unexplained = CliRunner().invoke(main, ["explain", files["actual"], files["noise"], *inputs])
    assert unexplained.exit_code == 1 and "Not explained" in unexplained.output
    as_json = CliRunner().invoke(
        main, ["explain", files["actual"], files["expected"], *inputs, "--json"]
    )
    fields = json.loads(as_json.output)
    assert fields["transform"] == "rot180" and fields["offset"] == [1, 1]


def test_cli_with_backends(tmp_path) -> None:
    args = [
        "explain",
        "--backends",
        "scipy-correlate2d",
        "scipy-convolve2d",
        "--size",
        "48x40",
        "--kernel-size",
        "3",
        "--spec",
        "full,wrap",
        "--spec-b",
        "convolve,same",
        "--transform-b",
        "transpose",
        "--save",
        str(tmp_path),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "actual   = scipy-correlate2d correlate[mode=full,boundary=wrap] on kernel" in (
        result.output
    )
    assert "expected = scipy-convolve2d convolve[mode=same,boundary=wrap] on kernel.T" in (
        result.output
    )
    assert "transform='antitranspose'" in result.output and "boundary='wrap'" in result.output
    assert "'full' vs 'same' output size" in result.output
    saved = {p.stem for p in tmp_path.glob("*.npy")}
    assert saved == {"image", "kernel", "actual", "expected"}
    assert np.load(tmp_path / "image.npy").shape == (48, 40)


@pytest.mark.parametrize(
    "args",
    [
        ["explain"],
        ["explain", "--backends", "scipy-convolve2d", "scipy-correlate2d", "--spec", "sideways"],
        ["explain", "--backends", "scipy-convolve2d", "scipy-correlate2d", "--size", "0"],
        ["explain", "--backends", "scipy-convolve2d", "no-such-backend"],
    ],
)
def test_cli_bad_usage_exits_2(args) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output


def test_cli_backends_json_prints_only_the_fields() -> None:
    args = ["explain", "--backends", "scipy-correlate2d", "scipy-convolve2d", "--size", "24"]
    result = CliRunner().invoke(main, [*args, "--spec-b", "convolve", "--json"])
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    assert fields["transform"] == "rot180" and fields["precision"] in ("exact", "rounding")


def test_cli_an_unavailable_backend_exits_1(monkeypatch) -> None:
    class Unavailable:
        def prepare(self, image, kernel, spec):
            raise BackendUnavailable("backend 'fake-gpu' is unavailable: no GPU")

    monkeypatch.setattr(explain_cmd, "get_backend", lambda name: Unavailable())
    result = CliRunner().invoke(main, ["explain", "--backends", "a", "b", "--size", "8"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: backend 'fake-gpu' is unavailable: no GPU"


# --- bad .npy inputs: exit 2, one line naming the file and what is wrong ------------------------


@pytest.fixture
def npy_case(tmp_path):
    """Valid image, kernel, actual and expected files; returns (folder, argv of the four)."""
    image, kernel = case()
    arrays = {
        "image": image,
        "kernel": kernel,
        "actual": conv(image, kernel),
        "expected": conv(image, kernel, op="convolve"),
    }
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)

    def argv(**replaced: str) -> list[str]:
        path = {name: replaced.get(name, str(tmp_path / f"{name}.npy")) for name in arrays}
        return [
            "explain",
            path["actual"],
            path["expected"],
            "--image",
            path["image"],
            "--kernel",
            path["kernel"],
        ]

    return tmp_path, argv


def refused(argv: list[str]) -> str:
    """The one error line of a command that must exit 2 without a traceback."""
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_the_valid_files_are_explained(npy_case) -> None:
    _, argv = npy_case
    result = CliRunner().invoke(main, argv())
    assert result.exit_code == 0 and result.output.startswith("Explained: cross-correlation")


def test_a_text_file_is_not_an_npy_file(npy_case) -> None:
    folder, argv = npy_case
    (folder / "text.npy").write_text("1.0 2.0\n3.0 4.0\n")
    line = refused(argv(kernel=str(folder / "text.npy")))
    assert line == (
        f"Error: Invalid value for '--kernel': '{folder / 'text.npy'}' is not an .npy file: "
        "it begins with b'1.0 2.', where np.save writes b'\\x93NUMPY'"
    )
    assert "pickled" not in line


def test_an_empty_file_is_not_an_npy_file(npy_case) -> None:
    folder, argv = npy_case
    (folder / "empty.npy").write_bytes(b"")
    line = refused(argv(image=str(folder / "empty.npy")))
    assert line.endswith("empty.npy' is not an .npy file: it is empty")
    assert line.startswith("Error: Invalid value for '--image'")


def test_a_pickle_or_an_npz_archive_is_not_an_npy_file(npy_case) -> None:
    folder, argv = npy_case
    (folder / "pickled.npy").write_bytes(pickle.dumps([1.0, 2.0], protocol=4))
    np.savez(folder / "archive.npz", a=np.ones(3))
    line = refused(argv(actual=str(folder / "pickled.npy")))
    assert (
        "Invalid value for '[ACTUAL]'" in line
        and "is not an .npy file: it begins with b'\\x80\\x04" in line
    )
    line = refused(argv(expected=str(folder / "archive.npz")))
    assert "Invalid value for '[EXPECTED]'" in line and "it begins with b'PK\\x03\\x04" in line


class _Planted:
    """Unpickling this creates a file: proof that a file of Python objects was never run."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_object_array_is_refused_without_unpickling_it(npy_case) -> None:
    folder, argv = npy_case
    marker = folder / "ran"
    np.save(folder / "objects.npy", np.array([_Planted(str(marker))], dtype=object))
    line = refused(argv(kernel=str(folder / "objects.npy")))
    assert line.startswith("Error: Invalid value for '--kernel': ")
    assert "objects.npy' holds Python objects (dtype object), not numbers" in line
    assert not marker.exists()


def test_a_structured_array_with_an_object_field_holds_objects(tmp_path) -> None:
    path = tmp_path / "record.npy"
    np.save(path, np.zeros(2, dtype=[("x", "f8"), ("label", "O")]))
    with pytest.raises(NpyError, match="holds Python objects"):
        read_npy(str(path))


def test_a_truncated_file_is_not_readable(npy_case) -> None:
    folder, argv = npy_case
    whole = (folder / "image.npy").read_bytes()
    (folder / "cut.npy").write_bytes(whole[: len(whole) // 2])
    line = refused(argv(image=str(folder / "cut.npy")))
    assert "cut.npy' is not a readable .npy file: Failed to read all data for array" in line
    (folder / "header.npy").write_bytes(whole[:20])
    assert "header.npy' is not a readable .npy file: " in refused(
        argv(image=str(folder / "header.npy"))
    )


def test_a_missing_file_is_named(npy_case) -> None:
    folder, argv = npy_case
    line = refused(argv(expected=str(folder / "nowhere.npy")))
    assert (
        line
        == f"Error: Invalid value for '[EXPECTED]': File '{folder / 'nowhere.npy'}' does not exist."
    )


def test_an_unreadable_file_is_named(npy_case, monkeypatch) -> None:
    folder, argv = npy_case
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: not str(path).endswith("kernel.npy") and real_access(path, mode),
    )
    line = refused(argv())
    assert (
        line
        == f"Error: Invalid value for '--kernel': File '{folder / 'kernel.npy'}' is not readable."
    )


def test_a_file_that_fails_to_open_is_named(npy_case, monkeypatch) -> None:
    folder, argv = npy_case

    def denied(path: str) -> np.ndarray:
        if path.endswith("kernel.npy"):
            raise PermissionError(13, "Permission denied", path)
        return read_npy(path)

    monkeypatch.setattr(explain_cmd, "read_npy", denied)
    line = refused(argv())
    assert line == (
        f"Error: Invalid value for '--kernel': '{folder / 'kernel.npy'}' cannot be read: "
        "Permission denied"
    )


@pytest.mark.parametrize(
    ("name", "array", "problem"),
    [
        ("kernel", np.ones((3, 3, 1)), "kernel must be a non-empty 2-D array; got shape (3, 3, 1)"),
        (
            "image",
            np.ones((2, 40, 36)),
            "image must be a non-empty 2-D array; got shape (2, 40, 36)",
        ),
        ("actual", np.ones(40), "actual must be a non-empty 2-D array; got shape (40,)"),
        ("expected", np.ones((0, 4)), "expected must be a non-empty 2-D array; got shape (0, 4)"),
        ("kernel", np.ones((3, 3), complex), "kernel dtype complex128 is not a real number type"),
        ("image", np.full((4, 4), "a"), "image dtype <U1 is not a real number type"),
    ],
)
def test_the_wrong_dimensions_or_dtype_name_the_file(npy_case, name, array, problem) -> None:
    folder, argv = npy_case
    path = folder / f"bad_{name}.npy"
    np.save(path, array)
    hint = f"'--{name}'" if name in ("image", "kernel") else f"'[{name.upper()}]'"
    line = refused(argv(**{name: str(path)}))
    assert line.startswith(f"Error: Invalid value for {hint}: '{path}': {problem}")


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_read_npy_reads_every_npy_version(tmp_path, version, order) -> None:
    array = (
        np.asfortranarray(np.arange(12.0).reshape(3, 4))
        if order == "F"
        else np.arange(12.0).reshape(3, 4)
    )
    path = tmp_path / "a.npy"
    with open(path, "wb") as file:
        npy_format.write_array(file, array, version=version)
    read = read_npy(str(path))
    assert read.dtype == np.float64 and np.array_equal(read, array)


def test_read_npy_refuses_an_unknown_version(tmp_path) -> None:
    path = tmp_path / "future.npy"
    with open(path, "wb") as file:
        npy_format.write_array(file, np.ones(2), version=(1, 0))
    data = bytearray(path.read_bytes())
    data[6] = 9
    path.write_bytes(bytes(data))
    with pytest.raises(
        NpyError,
        match=r"future\.npy' is a version 9\.0 \.npy file; convbench reads versions 1\.0 to 3\.0$",
    ):
        read_npy(str(path))


# --- the two modes exclude each other ------------------------------------------------------------


def test_files_and_backends_together_are_refused(npy_case) -> None:
    _, argv = npy_case
    line = refused([*argv(), "--backends", "scipy-correlate2d", "scipy-convolve2d"])
    assert line == "Error: give either ACTUAL EXPECTED --image --kernel, or --backends"


def test_files_mode_needs_all_four_and_no_save(npy_case) -> None:
    folder, argv = npy_case
    assert refused(argv()[:-2]) == (
        "Error: give ACTUAL EXPECTED .npy files with --image and --kernel, or --backends A B"
    )
    line = refused([*argv(), "--save", str(folder / "kept")])
    assert line == "Error: --save keeps the arrays of a --backends run"


def test_a_bad_size_names_the_option() -> None:
    line = refused(
        ["explain", "--backends", "scipy-correlate2d", "scipy-convolve2d", "--size", "0"]
    )
    assert (
        line == "Error: Invalid value for '--size': '0' is not a size N or HxW of positive integers"
    )


# --- --save: atomic, and an unwritable path is an error ------------------------------------------

BACKENDS = ["explain", "--backends", "scipy-correlate2d", "scipy-convolve2d", "--size", "16"]


def test_save_replaces_older_files_and_leaves_no_temporary(tmp_path) -> None:
    (tmp_path / "image.npy").write_bytes(b"an older, different file")
    result = CliRunner().invoke(main, [*BACKENDS, "--save", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "actual.npy",
        "expected.npy",
        "image.npy",
        "kernel.npy",
    ]
    image = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    assert np.array_equal(np.load(tmp_path / "image.npy"), image)


def test_a_failed_save_keeps_the_older_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "image.npy").write_bytes(b"older")

    def disk_full(file, array) -> None:
        file.write(b"\x93NUMPY torn")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    line = refused([*BACKENDS, "--save", str(tmp_path)])
    assert line == (
        f"Error: Invalid value for '--save': cannot write '{tmp_path / 'image.npy'}': "
        "No space left on device"
    )
    assert (tmp_path / "image.npy").read_bytes() == b"older"
    assert [p.name for p in tmp_path.iterdir()] == ["image.npy"]


def test_save_into_a_path_below_a_file_is_refused_before_running(tmp_path, monkeypatch) -> None:
    (tmp_path / "plain").write_text("a file")
    monkeypatch.setattr(explain_cmd.Side, "run", lambda *args: pytest.fail("ran before failing"))
    line = refused([*BACKENDS, "--save", str(tmp_path / "plain" / "sub")])
    assert line == (
        f"Error: Invalid value for '--save': cannot create folder '{tmp_path / 'plain' / 'sub'}': "
        "Not a directory"
    )


def test_save_onto_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "plain").write_text("a file")
    line = refused([*BACKENDS, "--save", str(tmp_path / "plain")])
    assert line == f"Error: Invalid value for '--save': Directory '{tmp_path / 'plain'}' is a file."


def test_a_saved_name_taken_by_a_folder_is_an_error(tmp_path) -> None:
    (tmp_path / "kernel.npy").mkdir()
    line = refused([*BACKENDS, "--save", str(tmp_path)])
    assert line.startswith(
        f"Error: Invalid value for '--save': cannot write '{tmp_path / 'kernel.npy'}': "
    )
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- layers ------------------------------------------------------------------------------------


@pytest.fixture
def layer_files(tmp_path):
    """A grouped layer's image and kernel, its 'SAME' result at stride 2 and torch's padding=1."""
    from tests.test_explain import layer_case, padded

    spec = ConvSpec(stride=2, groups=2)
    image, kernel = layer_case()
    arrays = {
        "image": image,
        "kernel": kernel,
        "actual": convbench.reference(image, kernel, spec).astype(np.float32),
        "expected": padded(image, kernel, ((1, 1), (1, 1)), spec),
    }
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)

    def argv(*extra: str) -> list[str]:
        files = [str(tmp_path / f"{name}.npy") for name in ("actual", "expected")]
        images = ["--image", str(tmp_path / "image.npy"), "--kernel", str(tmp_path / "kernel.npy")]
        return ["explain", *files, *images, *extra]

    return argv


def test_cli_explains_layer_files_at_their_stride(layer_files) -> None:
    result = CliRunner().invoke(main, layer_files("--stride", "2", "--groups", "2", "--json"))
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    assert fields["padding"] == [[[0, 1], [0, 1]], [[1, 1], [1, 1]]]
    assert fields["transform"] is None and fields["precision"] in ("exact", "rounding")
    words = CliRunner().invoke(main, layer_files("--stride", "2", "--groups", "2"))
    assert "as TensorFlow's 'SAME' does" in " ".join(words.output.split())


def test_cli_layer_files_that_do_not_go_together_are_refused(layer_files) -> None:
    result = CliRunner().invoke(main, layer_files("--stride", "2", "--groups", "3"))
    assert result.exit_code == 2
    assert "ConvSpec groups=3 does not divide C_in=4" in result.output


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--layer", "resnet50.conv1"], "--layer generates a case for --backends"),
        (["--stride", "0"], "'0' is not a size N or HxW of positive integers"),
    ],
)
def test_cli_layer_options_misused_in_files_mode(layer_files, extra, problem) -> None:
    result = CliRunner().invoke(main, layer_files(*extra))
    assert result.exit_code == 2 and problem in result.output


def test_cli_backends_on_a_network_layer() -> None:
    args = ["explain", "--backends", "torch-cpu", "torch-cpu", "--layer", "resnet50.conv1"]
    result = CliRunner().invoke(main, [*args, "--transform-b", "rot180", "--json"])
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    assert fields["transform"] == "rot180" and fields["padding"] is None
    said = CliRunner().invoke(main, [*args, "--spec-b", "valid"])
    assert said.exit_code == 0, said.output
    assert said.output.startswith(
        "actual   = torch-cpu correlate[mode=same,boundary=fill,stride=2] on kernel\n"
        "expected = torch-cpu correlate[mode=valid,boundary=fill,stride=2] on kernel\n"
        "layer resnet50.conv1: image (1, 3, 224, 224) float32, kernel (64, 3, 7, 7) (seed 0)\n"
    )
    assert "Expected pads nothing, as mode='valid' does" in " ".join(said.output.split())


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--layer", "resnet50.conv1", "--stride", "2"], "--layer sets the stride"),
        (
            ["--layer", "resnet50.conv1", "--transform-b", "transpose"],
            "'transpose' is not an orientation of a layer's kernel",
        ),
    ],
)
def test_cli_backends_layer_misuse_is_refused(extra, problem) -> None:
    args = ["explain", "--backends", "torch-cpu", "torch-cpu", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and problem in result.output


def test_cli_a_backend_without_strides_says_so() -> None:
    args = ["explain", "--backends", "scipy-correlate2d", "torch-cpu", "--size", "16"]
    result = CliRunner().invoke(main, [*args, "--stride", "2"])
    reason = convbench.get_backend("scipy-correlate2d").layer_unsupported(
        ConvSpec(stride=2), (16, 16), (3, 3), "float32"
    )
    assert result.exit_code == 1 and reason
    assert result.output == f"Error: {reason}\n"
