"""handgrad's pytest plugin: every generic check, run on the cases a ``conftest.py`` names.

Installed with handgrad (a ``pytest11`` entry point), so nothing needs enabling. In any
``conftest.py`` that pytest collects, write::

    from my_grads_case import CASE
    handgrad_cases = [CASE]

and ``pytest`` runs ``handgrad.checks`` on those cases, per device and dtype, with ids such
as ``conftest.py::test_agrees_with_autograd[my_case-cpu-float32]``.

Any test of a project that takes a ``device`` or ``dtype`` argument is parametrised too:
``cpu`` and ``cuda`` (skipped with the reason where no GPU is present; with
``--require-cuda``, one error line instead, and no test runs), and float64, float32,
bfloat16 and float16. A dtype an op lacks on a device (``"... not implemented for
'Half'"``) skips that test with torch's reason, where autograd of the case's forward
lacks it too (``pytest_runtest_call``).

The summary ends with the detection limits the generic mutants' check measured: per case,
device and dtype, the smallest uniform relative error the verdict rejects.

Once some ``conftest.py`` declares cases, the session also turns TF32 off (float32 on CUDA
stays float32) and asks torch for deterministic algorithms, so every run computes the same
numbers.
"""

import os
from pathlib import Path

import pytest
import torch

from handgrad import function
from handgrad.case import DTYPES
from handgrad.judgement import Excused

CUDA_MISSING = "CUDA: no GPU on this machine"


def pytest_addoption(parser):
    group = parser.getgroup("handgrad")
    group.addoption("--require-cuda", action="store_true",
                    help="where no GPU is present and cuda tests are selected, stop with one "
                         "error instead of skipping them (for a CI job that must test the GPU)")
    group.addoption("--run-slow", action="store_true",
                    help="run the checks marked slow (large sizes), skipped otherwise")


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: runs on a CUDA device; skipped where no GPU is "
                                       "present (an error with --require-cuda)")
    config.addinivalue_line("markers", "slow: takes seconds (large sizes, whole runs); skipped "
                                       "with the reason unless --run-slow")
    # torch.func's first use runs torch.jit.script inside torch itself (torch 2.13).
    config.addinivalue_line("filterwarnings",
                            "ignore:`torch.jit.script` is deprecated:DeprecationWarning")
    # A right form that loses digits only at drawn values (handgrad.generated) is reported,
    # not failed, even under a project's "error": -W error::handgrad.LessAccurateWarning
    # (on the command line or in addopts, which come after this) fails it.
    config.addinivalue_line("filterwarnings", "default::handgrad.LessAccurateWarning")
    if hasattr(config, "workerinput"):  # an xdist worker: one per core, one thread each
        torch.set_num_threads(1)  # (torch's default, a thread per core, oversubscribes)


def pin_numerics() -> None:
    """The same numbers on every run: no TF32, deterministic kernels (cuBLAS included)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # This also imports torch._dynamo (1 s), here, before any test: left to torch, the first
    # op under a dispatch mode imports it inside a test, and where that import once failed
    # in a worker, every later one did too ("Only a single TORCH_LIBRARY ...", 30 tests).
    torch.use_deterministic_algorithms(True)


def pytest_plugin_registered(plugin):
    if hasattr(plugin, "handgrad_cases"):  # a conftest.py that declares cases
        pin_numerics()


class HandgradChecks(pytest.Module):
    """``handgrad.checks``, collected under the conftest.py that declares the cases."""

    def _getobj(self):
        from handgrad import checks

        return checks


def _declared_cases(conftest: Path, config) -> tuple | None:
    module = config.pluginmanager.get_plugin(str(conftest))
    cases = getattr(module, "handgrad_cases", None)
    return None if cases is None else tuple(cases)


def pytest_collect_file(file_path: Path, parent):
    if file_path.name != "conftest.py":
        return None
    cases = _declared_cases(file_path, parent.config)
    if not cases:
        return None
    return HandgradChecks.from_parent(parent, path=file_path)


def _cases_for(metafunc) -> tuple:
    """The cases of the nearest ``conftest.py`` above the test that declares some: the
    plugin's checks, and a project's own tests that take a ``case`` argument, get those."""
    path = Path(metafunc.definition.path).parent
    declared = {Path(m.__file__).parent: m.handgrad_cases
                for m in metafunc.config.pluginmanager.get_plugins()
                if hasattr(m, "handgrad_cases") and getattr(m, "__file__", None)}
    for folder in (path, *path.parents):
        if folder in declared:
            return tuple(declared[folder])
    return ()


def _parametrized(metafunc) -> set[str]:
    names: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0]
        names.update(n.strip() for n in argnames.split(",")) if isinstance(argnames, str) \
            else names.update(argnames)
    return names


@pytest.hookimpl(trylast=True)  # a test's own parametrize ids come first
def pytest_generate_tests(metafunc):
    cases, taken = _cases_for(metafunc), _parametrized(metafunc)
    wants = [n for n in metafunc.fixturenames if n not in taken]
    if not cases and {"case", "form", "hessian_case", "example", *function.OPT_INS} & set(wants):
        raise pytest.UsageError(
            f"{metafunc.definition.nodeid} takes a case, but no conftest.py above it declares "
            "handgrad_cases = [...]")
    if "form" in wants:
        pairs = [(c, f) for c in cases for f in c.forms]
        metafunc.parametrize(("case", "form"), pairs,
                             ids=[c.name if f == "gradients" else f"{c.name}-{f}"
                                  for c, f in pairs])
    elif "case" in wants:
        metafunc.parametrize("case", cases, ids=[c.name for c in cases])
    if "hessian_case" in wants:
        with_hessian = [c for c in cases if hasattr(c.module, "hessians")]
        metafunc.parametrize("hessian_case", with_hessian, ids=[c.name for c in with_hessian])
    for name, flag in function.OPT_INS.items():  # function cases, each check opted into
        if name in wants and not (chosen := function.opted_in(cases, flag)):
            rest = [n for n in ("device", "dtype") if n in wants]  # one skip, not 8
            metafunc.parametrize([name, *rest], [])
            wants = [n for n in wants if n not in rest]
        elif name in wants:
            metafunc.parametrize(name, chosen, ids=[c.name for c in chosen])
    if "example" in wants:
        examples = [(c, e) for c in cases for e in c.examples]
        metafunc.parametrize("example", examples,
                             ids=[f"{c.name}-{e.label}" for c, e in examples])
    if "device" in wants:
        require = metafunc.config.getoption("require_cuda")
        skip = [] if require else [pytest.mark.skipif(not torch.cuda.is_available(),
                                                      reason=CUDA_MISSING)]
        metafunc.parametrize("device", ["cpu", pytest.param("cuda", marks=[
            pytest.mark.cuda, *skip])])
    if "dtype" in wants:
        metafunc.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))


def _params(item) -> dict:
    spec = getattr(item, "callspec", None)
    return spec.params if spec else {}


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config, items):
    """``--require-cuda`` where no GPU is: one error, before any test runs, where the
    selection holds a cuda id (the slow ones too), not one failure per id. An xdist worker
    leaves it to ``pytest_runtest_setup``: an error there would crash the worker."""
    cuda = sum(_params(item).get("device") == "cuda" for item in items)
    if config.getoption("require_cuda") and not torch.cuda.is_available() and cuda and \
            not hasattr(config, "workerinput"):
        raise pytest.UsageError(f"{_no_gpu()}, and {cuda} selected tests run on cuda")


def _no_gpu() -> str:
    return (f"--require-cuda: {CUDA_MISSING} (torch {torch.__version__}, built with CUDA "
            f"{torch.version.cuda})")


def pytest_runtest_setup(item):
    params = _params(item)
    if params.get("device") == "cuda" and not torch.cuda.is_available():  # --require-cuda
        pytest.fail(_no_gpu(), pytrace=False)  # before the slow skip: required, it fails
    if item.get_closest_marker("slow") and not item.config.getoption("run_slow"):
        pytest.skip("slow: run with --run-slow")
    if reason := function.skip_reason(item.originalname, params):
        pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A check whose failures an opt-out covers (``handgrad.judgement.Excused``: a form
    declared ``full_precision_only``, overflowing in half precision where autograd does not,
    right in float64) is reported XFAIL with the reason; a wrong gradient fails whatever is
    declared.
    torch's "not implemented for 'Half'" skips the test with the reason only where the
    reference lacks the op too: autograd of the case's forward (``Case.reference``) on its
    default inputs, in the test's device and dtype (float64 and the cpu where it takes
    none), raises the same kind of error. The combination then cannot be checked, which is
    not a failure. Anywhere else the error is the code's own (a backward that raises it
    while autograd runs), and the test fails with it; so does a test with no case to ask."""
    outcome = yield
    error = outcome.excinfo[1] if outcome.excinfo else None
    if isinstance(error, Excused):  # an opt-out that covers every failure: XFAIL, saying so
        outcome.force_exception(pytest.xfail.Exception(str(error).splitlines()[0]))
        return

    def torch_lacks_an_op(error) -> bool:
        return isinstance(error, (RuntimeError, NotImplementedError)) and \
            "not implemented for" in str(error)

    if not torch_lacks_an_op(error):
        return
    params = item.callspec.params if hasattr(item, "callspec") else {}
    case = params.get("case") or params.get("hessian_case") or (params.get("example") or [None])[0]
    if case is None:
        return
    try:
        case.reference(case.inputs(params.get("device", "cpu"), params.get("dtype", torch.float64)))
    except (RuntimeError, NotImplementedError) as reference_error:
        if torch_lacks_an_op(reference_error):
            outcome.force_exception(pytest.skip.Exception(
                f"torch lacks an op here, for autograd's reference too: "
                f"{str(reference_error).splitlines()[0]}", _use_item_location=True))


def pytest_terminal_summary(terminalreporter):
    """The detection limits the generic mutants' check measured (``handgrad.report.LIMIT``),
    per case, device and dtype: how small a wrong gradient this run would have caught."""
    from handgrad.report import LIMIT, limits_table

    limits = {value[:3]: value[3] for report in terminalreporter.stats.get("passed", ())
              for key, value in getattr(report, "user_properties", ()) if key == LIMIT}
    if limits:
        terminalreporter.write_sep("=", "handgrad detection limits")
        terminalreporter.write_line(limits_table(limits))
