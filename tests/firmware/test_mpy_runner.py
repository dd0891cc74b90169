import mpy_runner


def test_micropython_runs_and_reports_failure():
    ok = mpy_runner.run("import sys; print(sys.implementation.name)")
    assert ok.stdout.strip() == b"micropython"
    bad = mpy_runner.run("assert 1 == 2, 'boom'", check=False)
    assert bad.returncode != 0
    assert b"boom" in bad.stderr + bad.stdout
