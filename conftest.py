"""handgrad's own cases, checked by its pytest plugin; and the hypothesis profiles.

``handgrad_cases`` is all the plugin needs: every generic check in ``handgrad.checks``
runs on each case, per device and dtype (ids such as
``conftest.py::test_agrees_with_autograd[mlp_relu_mse-cpu-float32]``).
"""

from hypothesis import settings

from cases import CASES

handgrad_cases = CASES

# Generated-shape tests: "ci" is the default; pytest --hypothesis-profile=dev for more.
# "ci" draws the same examples on every run and machine, and replays none that an earlier
# dev run saved to .hypothesis/: plain pytest stays the suite CI runs.
settings.register_profile("ci", max_examples=25, derandomize=True, database=None,
                          print_blob=True)
settings.register_profile("dev", max_examples=500, print_blob=True)
settings.load_profile("ci")

pytest_plugins = ["pytester"]  # tests/test_plugin.py runs pytest on a project of its own
