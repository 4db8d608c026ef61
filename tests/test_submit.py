"""`kit submit` and `kit submissions` end to end through the real kaggle client, against tests/kaggle_server.py."""
import hashlib
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import error_line

from kit.cli import main
from kit.data.reading import read_sample_ids
from kit.data.spec import HPA
from kit.data.submission import submission_frame
from kit.kaggle.log import COLUMNS, append_row, read_log
from kit.kaggle.submit import default_message

pytest_plugins = ["kaggle_server"]  # the stand-in server's fixtures: kaggle, stand_in


@pytest.fixture
def submission(synth_dir, tmp_path, monkeypatch):
    """submissions/blend.csv (valid) and the blend.json beside it, in a fresh working folder."""
    monkeypatch.chdir(tmp_path)
    ids = read_sample_ids(synth_dir / "sample_submission.csv", HPA)
    predicted = np.random.default_rng(0).random((len(ids), HPA.num_classes)) > 0.8
    path = tmp_path / "submissions" / "blend.csv"
    path.parent.mkdir()
    submission_frame(ids, predicted, HPA).to_csv(path, index=False)
    meta = {"members": ["resnet18", "effnet_b0"], "method": "mean", "blend": {"f1": {"tuned": 0.61, "cv": 0.6123}}}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def run(*args):
    return CliRunner().invoke(main, list(args))


def submit(synth_dir, path, *extra):
    return run("submit", str(path), "--data", str(synth_dir), *extra)


def log_rows(tmp_path):
    return read_log(tmp_path / "submissions" / "log.csv")


# ---------------------------------------------------------------- success


def test_submit_uploads_the_file_unchanged_with_its_message(kaggle, synth_dir, submission, tmp_path):
    before = submission.read_bytes(), submission.stat().st_mtime_ns
    result = submit(synth_dir, submission)
    assert result.exit_code == 0, result.output
    start, = kaggle.calls("StartSubmissionUpload")
    assert start.json()["competitionName"] == HPA.slug
    assert start.json()["fileName"] == "blend.csv" and start.json()["contentLength"] == len(before[0])
    assert list(kaggle.uploads.values()) == [before[0]]
    create, = kaggle.calls("CreateSubmission")
    message = create.json()["submissionDescription"]
    assert message == "blend.csv: mean of 2 (resnet18, effnet_b0), OOF macro F1 0.6123 (cv)"
    assert "ref 1000" in result.output
    assert (submission.read_bytes(), submission.stat().st_mtime_ns) == before
    row, = log_rows(tmp_path)
    assert row["outcome"] == "submitted" and row["competition"] == HPA.slug and row["message"] == message
    assert row["file"] == str(submission) and row["sha256"] == hashlib.sha256(before[0]).hexdigest()


def test_message_and_competition_options(kaggle, synth_dir, submission):
    kaggle.competition = "other-comp"
    result = submit(synth_dir, submission, "-m", "my, own message", "--competition", "other-comp")
    assert result.exit_code == 0, result.output
    assert kaggle.calls("CreateSubmission")[0].json() == {
        "competitionName": "other-comp", "blobFileTokens": "blob-1", "submissionDescription": "my, own message"}


def test_wait_prints_the_public_score(kaggle, synth_dir, submission, tmp_path):
    kaggle.polls_to_score = 3
    result = submit(synth_dir, submission, "--wait")
    assert result.exit_code == 0, result.output
    assert "public score: 0.4321" in result.output
    assert len(kaggle.calls("ListSubmissions")) == 3
    row, = log_rows(tmp_path)
    assert (row["outcome"], row["score"]) == ("scored", "0.4321")


def test_wait_is_bounded(kaggle, synth_dir, submission, tmp_path):
    kaggle.polls_to_score = 10**6
    result = submit(synth_dir, submission, "--wait", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert "not scored within 1s" in result.output
    assert log_rows(tmp_path)[0]["outcome"] == "submitted"


def test_a_scoring_error_is_reported_and_logged(kaggle, synth_dir, submission, tmp_path):
    kaggle.scoring_error = "Submission has an unexpected row count"
    line = error_line(submit(synth_dir, submission, "--wait"))
    assert "could not score submission 1000: Submission has an unexpected row count" in line
    assert log_rows(tmp_path)[0]["outcome"] == "scoring-failed: Submission has an unexpected row count"


def test_submissions_lists_recent_scores(kaggle, synth_dir, submission):
    assert submit(synth_dir, submission).exit_code == 0
    assert submit(synth_dir, submission, "--force", "-m", "again").exit_code == 0
    result = run("submissions")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ref", "date", "file", "status", "public", "private", "description"]
    assert lines[1].split()[0] == "1001" and lines[1].endswith("again")
    assert "COMPLETE" in lines[2] and "0.4321" in lines[2]
    assert kaggle.calls("ListSubmissions")[0].json()["competitionName"] == HPA.slug


def test_credentials_from_a_token_or_kaggle_json(kaggle, synth_dir, submission, monkeypatch, tmp_path):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle.token)
    assert submit(synth_dir, submission).exit_code == 0
    assert kaggle.calls("IntrospectToken")
    assert kaggle.calls("CreateSubmission")[0].headers["Authorization"] == f"Bearer {kaggle.token}"

    monkeypatch.delenv("KAGGLE_API_TOKEN")
    (tmp_path / "home" / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": kaggle.username,
                                                                           "key": kaggle.key}))
    assert submit(synth_dir, submission, "--force").exit_code == 0
    assert kaggle.calls("CreateSubmission")[1].headers["Authorization"].startswith("Basic ")


# ---------------------------------------------------------------- refused before any network call


def test_an_invalid_file_never_reaches_the_server(kaggle, synth_dir, submission, tmp_path):
    lines = submission.read_text().splitlines()
    first_id = lines[1].split(",")[0]
    lines[1] = f"{first_id},3 99"
    submission.write_text("\n".join(lines) + "\n")
    line = error_line(submit(synth_dir, submission))
    assert line == f"Error: {submission}: line 2: Id {first_id}: label '99' is not a class index 0..27"
    assert kaggle.requests == []
    row, = log_rows(tmp_path)
    assert row["outcome"].startswith("invalid: ") and "label '99'" in row["outcome"]


def test_a_digit_of_another_script_is_not_a_label(kaggle, synth_dir, submission, tmp_path):
    lines = submission.read_text().splitlines()
    lines[1] = lines[1].split(",")[0] + ",\u00b2"
    submission.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "is not a class index" in error_line(submit(synth_dir, submission))
    assert kaggle.requests == [] and log_rows(tmp_path)[0]["outcome"].startswith("invalid: ")


def test_the_same_bytes_again_need_force(kaggle, synth_dir, submission, tmp_path):
    assert submit(synth_dir, submission).exit_code == 0
    line = error_line(submit(synth_dir, submission))
    assert "already submitted to human-protein-atlas-image-classification" in line and "--force" in line
    assert len(kaggle.calls("CreateSubmission")) == 1
    assert submit(synth_dir, submission, "--force").exit_code == 0
    assert len(kaggle.calls("CreateSubmission")) == 2
    assert [row["outcome"] for row in log_rows(tmp_path)] == ["submitted", "refused: already submitted", "submitted"]


def test_dry_run_sends_and_logs_nothing(kaggle, synth_dir, submission, tmp_path):
    result = submit(synth_dir, submission, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: would upload" in result.output and "12 rows" in result.output
    assert "OOF macro F1 0.6123" in result.output
    assert kaggle.requests == []
    assert not (tmp_path / "submissions" / "log.csv").exists()


# ---------------------------------------------------------------- errors, each one clear line


def test_no_credentials(kaggle, synth_dir, submission, monkeypatch, tmp_path):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    line = error_line(submit(synth_dir, submission))
    assert line.startswith("Error: no Kaggle credentials found: set KAGGLE_API_TOKEN")
    assert str(tmp_path / "home" / ".kaggle") in line
    assert kaggle.requests == []
    assert log_rows(tmp_path)[0]["outcome"].startswith("failed: no Kaggle credentials")


def test_bad_key_is_a_401(kaggle, synth_dir, submission, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "wrong")
    line = error_line(submit(synth_dir, submission))
    assert "rejected the credentials from KAGGLE_USERNAME/KAGGLE_KEY (401 Unauthorized)" in line
    assert len(kaggle.calls("StartSubmissionUpload")) == 1  # not retried


def test_bad_token(kaggle, synth_dir, submission, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "expired")
    line = error_line(submit(synth_dir, submission))
    assert "did not accept the API token from KAGGLE_API_TOKEN (invalid or expired)" in line
    assert kaggle.calls("StartSubmissionUpload") == []


def test_rules_not_accepted_is_a_403(kaggle, synth_dir, submission):
    kaggle.rules_accepted = False
    line = error_line(submit(synth_dir, submission))
    assert "(403 Forbidden): accept the competition's rules at" in line
    assert f"https://www.kaggle.com/competitions/{HPA.slug}/rules" in line


def test_unknown_competition_is_a_404(kaggle, synth_dir, submission, tmp_path):
    line = error_line(submit(synth_dir, submission, "--competition", "no-such-comp"))
    assert "competition 'no-such-comp' not found on Kaggle (404)" in line
    assert log_rows(tmp_path)[0]["competition"] == "no-such-comp"


def test_daily_limit(kaggle, synth_dir, submission, tmp_path):
    kaggle.fail("CreateSubmission", 429)
    line = error_line(submit(synth_dir, submission))
    assert "daily submission limit of human-protein-atlas-image-classification is reached (429" in line
    assert len(kaggle.calls("CreateSubmission")) == 1  # a limit is not retried
    assert log_rows(tmp_path)[0]["outcome"].startswith("failed: submit: the daily submission limit")


ALLOWANCE = ("Submission not allowed:  Your team has used its daily Submission allowance (5) today, please try "
             "again tomorrow UTC (8.3 hours from now).")


@pytest.mark.parametrize("status", [400, 200])
def test_daily_limit_as_kaggle_reports_it(kaggle, synth_dir, submission, tmp_path, status):
    # Kaggle answers a submission over the allowance with 400 and this message, or with 200, the message and no ref
    kaggle.create_answer = (status, {"code": 400, "message": ALLOWANCE} if status == 400 else {"message": ALLOWANCE})
    line = error_line(submit(synth_dir, submission))
    assert f"the daily submission limit of {HPA.slug} is reached" in line and "daily Submission allowance (5)" in line
    assert len(kaggle.calls("CreateSubmission")) == 1  # a limit is not retried
    assert kaggle.submissions == []
    outcome = log_rows(tmp_path)[0]["outcome"]
    assert outcome.startswith("failed: submit: the daily submission limit")


def test_an_answer_without_a_submission_is_never_logged_as_submitted(kaggle, synth_dir, submission, tmp_path):
    kaggle.create_answer = (200, {"message": "Competition is closed for submissions"})
    line = error_line(submit(synth_dir, submission, "--wait"))
    assert "Kaggle created no submission" in line and "Competition is closed for submissions" in line
    assert [row["outcome"] for row in log_rows(tmp_path)] == [
        f"failed: submit: Kaggle created no submission for {HPA.slug} (Competition is closed for submissions)"]
    assert kaggle.calls("ListSubmissions") == []


def test_server_errors_are_retried(kaggle, synth_dir, submission, tmp_path):
    kaggle.fail("StartSubmissionUpload", "drop")
    kaggle.fail("CreateSubmission", 503)
    result = submit(synth_dir, submission)  # 1: connection dropped, 2: 503, 3: through
    assert result.exit_code == 0, result.output
    assert result.output.count("retrying") == 2
    assert len(kaggle.calls("StartSubmissionUpload")) == 3 and len(kaggle.calls("CreateSubmission")) == 2
    assert len(kaggle.submissions) == 1
    assert [row["outcome"] for row in log_rows(tmp_path)] == ["submitted"]


def test_retries_stop_at_the_bound(kaggle, synth_dir, submission, tmp_path):
    kaggle.fail("StartSubmissionUpload", *[500] * 10)
    line = error_line(submit(synth_dir, submission))
    assert "Kaggle answered 500 (server error) 3 time(s)" in line
    assert len(kaggle.calls("StartSubmissionUpload")) == 3
    assert kaggle.calls("CreateSubmission") == []
    assert len(log_rows(tmp_path)) == 1


def test_a_failed_upload_is_retried_and_bounded(kaggle, synth_dir, submission):
    kaggle.fail("upload", 500)
    assert submit(synth_dir, submission).exit_code == 0
    assert len(kaggle.calls("upload")) == 2 and len(kaggle.calls("CreateSubmission")) == 1
    kaggle.fail("upload", 500, 500, 500)
    line = error_line(submit(synth_dir, submission, "--force"))
    assert "the upload to Kaggle failed 3 time(s)" in line
    assert len(kaggle.calls("CreateSubmission")) == 1


def test_a_connection_lost_while_creating_is_not_repeated(kaggle, synth_dir, submission):
    kaggle.fail("CreateSubmission", "drop")
    line = error_line(submit(synth_dir, submission))
    assert "lost while the submission was being created" in line and "kit submissions" in line
    assert len(kaggle.calls("CreateSubmission")) == 1


def test_no_network(kaggle, synth_dir, submission, monkeypatch, tmp_path):
    from kagglesdk import kaggle_env

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setitem(kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.TEST, f"http://127.0.0.1:{port}")
    line = error_line(submit(synth_dir, submission))
    assert f"cannot reach Kaggle at http://127.0.0.1:{port} (no network?) after 3 attempt(s)" in line
    assert log_rows(tmp_path)[0]["outcome"].startswith("failed: submit: cannot reach Kaggle")


# ---------------------------------------------------------------- the log and the default message


def test_the_log_is_only_ever_appended(tmp_path):
    log = tmp_path / "log.csv"
    append_row(log, file="a.csv", sha256="1" * 64, competition="c", message='with, comma and "quotes"',
               outcome="submitted")
    before = log.read_bytes()
    for i in range(5):
        append_row(log, file=f"{i}.csv", sha256="2" * 64, competition="c", message="m\nmulti line", outcome="failed")
    after = log.read_bytes()
    assert after.startswith(before)
    assert after.count(b"time,file,sha256") == 1
    rows = read_log(log)
    assert len(rows) == 6 and list(rows[0]) == list(COLUMNS)
    assert rows[0]["message"] == 'with, comma and "quotes"' and rows[1]["message"] == "m multi line"


@pytest.mark.parametrize("meta, expected", [
    (None, "blend.csv"),
    ("not json", "blend.csv"),
    ({"unrelated": 1}, "blend.csv"),
    ({"members": [{"name": "a"}, {"name": "b"}], "method": "hill", "blend": {"f1": {"cv": 0.5, "tuned": 0.6}}},
     "blend.csv: hill of 2 (a, b), OOF macro F1 0.5000 (cv)"),
    ({"members": [{"name": "a"}], "method": "mean", "blend": {"f1": {"at_0.5": 0.4, "tuned": 0.45}}},
     "blend.csv: mean of 1 (a), OOF macro F1 0.4500 (tuned)"),
    ({"method": "rank", "blend": {"f1": "n/a"}}, "blend.csv: rank"),
])
def test_default_message_reads_the_blend_json_defensively(tmp_path, meta, expected):
    path = tmp_path / "blend.csv"
    path.write_text("Id,Predicted\n")
    if meta is not None:
        path.with_suffix(".json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    assert default_message(path) == expected


# ---------------------------------------------------------------- without credentials or the kaggle package


def clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "KIT_KAGGLE_"))}
    env["HOME"] = str(tmp_path / "home")
    return env


def test_the_kit_imports_and_runs_without_credentials_or_kaggle(tmp_path, synth_dir, submission):
    env = clean_env(tmp_path)
    code = ("import sys, kit, kit.cli, kit.kaggle.client, kit.kaggle.submit, kit.kaggle.download, kit.kaggle.log\n"
            "assert 'kaggle' not in sys.modules, 'kaggle imported too early'\n"
            "from click.testing import CliRunner\n"
            "for args in (['--help'], ['submit', '--help'], ['download', '--help'], ['synth', 'out', '--n-train', "
            "'4', '--n-test', '2', '--size', '16']):\n"
            "    result = CliRunner().invoke(kit.cli.main, args)\n"
            "    assert result.exit_code == 0, result.output\n"
            "assert 'kaggle' not in sys.modules, 'a command imported kaggle'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_submit_without_credentials_in_a_fresh_process(tmp_path, synth_dir, submission):
    env = clean_env(tmp_path)
    env["KAGGLE_CONFIG_DIR"] = str(tmp_path / "kaggle-config")
    done = subprocess.run([sys.executable, "-m", "kit", "submit", str(submission), "--data", str(synth_dir)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""  # kaggle's own help text stays off the screen
    assert done.stderr.strip().splitlines() == [
        f"Error: no Kaggle credentials found: set KAGGLE_API_TOKEN (create a token at "
        f"https://www.kaggle.com/settings/api), or KAGGLE_USERNAME and KAGGLE_KEY, or save kaggle.json in "
        f"{tmp_path / 'kaggle-config'} (or $KAGGLE_CONFIG_DIR)"]


def test_a_missing_dependency_of_kaggle_is_one_clear_line(tmp_path, synth_dir, submission):
    code = ("import sys\nsys.modules['kagglesdk'] = None  # as if kaggle's transport were not installed\n"
            "from kit.cli import main\nmain(sys.argv[1:])\n")
    done = subprocess.run([sys.executable, "-c", code, "submit", str(submission), "--data", str(synth_dir)],
                          cwd=tmp_path, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: the Kaggle client is not installed (module 'kagglesdk' is missing): " \
                                  "pip install 'kit[kaggle]'"
