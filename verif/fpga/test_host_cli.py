"""The host CLI checks the job against the configuration before it opens the port."""

import pytest

from sqhw.host.cli import main


@pytest.mark.parametrize("args, says", [
    (["--k", "100"], "--k must be a positive multiple of the bank size 16 up to --k-max 32"),
    (["--k", "0"], "--k must be a positive multiple"),
    (["--m", "0"], "--m must be at least 1, not 0"),
    (["--n", "-3"], "--n must be at least 1, not -3"),
])
def test_bad_job_refused_before_the_port(capsys, args, says):
    # The port does not exist: reaching it would give "cannot open", not this usage error.
    with pytest.raises(SystemExit) as e:
        main(["matmul", "--rows", "1", "--k-max", "32", "--port", "/nonexistent/tty", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_good_job_reaches_the_port(capsys):
    assert main(["matmul", "--rows", "1", "--k-max", "32", "--port", "/nonexistent/tty",
                 "--k", "16"]) == 1
    assert "cannot open /nonexistent/tty" in capsys.readouterr().err
