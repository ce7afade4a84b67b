"""The `backprop-lab` dispatcher: every subcommand and claim listed, --help exits 0, a missing command exits 2."""
import pkgutil

import pytest

from experiments import claims, cli


def test_help_lists_every_command_and_claim_and_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in (*cli.COMMANDS, *claims.CLAIMS))


def test_every_claims_module_is_a_subcommand():
    modules = {m.name for m in pkgutil.iter_modules(claims.__path__)} - {"harness", "solutions", "pages"}   # tools, not claims
    assert modules == set(claims.CLAIMS)


@pytest.mark.parametrize("argv", [[], ["fly"], ["claims"], ["claims", "fly"]], ids=["none", "unknown", "no-claim",
                                                                                       "unknown-claim"])
def test_a_missing_or_unknown_command_prints_the_help_to_stderr_and_exits_2(capsys, argv):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert not captured.out and "usage: backprop-lab" in captured.err and "error:" in captured.err.splitlines()[-1]


@pytest.mark.parametrize("command", ["train", "landscape", "compare"])
def test_each_commands_help_exits_0_under_its_subcommand_name(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0 and f"usage: backprop-lab {command}" in capsys.readouterr().out


def test_claims_run_through_the_dispatcher(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["claims", "chain_depth", "--help"])
    assert exit_.value.code == 0 and "--quick" in capsys.readouterr().out
