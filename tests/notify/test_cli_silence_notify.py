"""``jacmon silence`` and ``jacmon notify log``/``test`` from the command line, on a real file."""

from __future__ import annotations

import json

from test_cli_tasks import AT, invoke, make_db


def test_silence_add_list_expire_marks_the_matching_firing_alert(tmp_path):
    db = str(make_db(tmp_path / "jacmon.db"))
    assert invoke("run-task", "performance", "--db", db, *AT).exit_code == 0
    added = invoke(
        "silence", "add", "--learner", "a", "--for", "7d", "--note", "on leave", "--by", "sam",
        "--db", db, "--json",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    body = json.loads(added.output)
    assert body["silence"]["learner"] == "a" and body["silence"]["note"] == "on leave"
    assert body["alerts_silenced"] >= 1
    alerts = json.loads(invoke("alerts", "--json", "--db", db).output)
    by_learner = {}
    for alert in alerts:
        by_learner.setdefault(alert["learner"], []).append(alert)
    assert all(a["silenced"]["id"] == body["silence"]["id"] for a in by_learner["a"])
    assert all(a["silenced"] is None for a in by_learner["b"])
    listed = invoke("silence", "list", "--db", db)
    assert "on leave" in listed.text and "sam" in listed.text and "active" in listed.text
    expired = invoke("silence", "expire", str(body["silence"]["id"]), "--db", db)
    assert expired.exit_code == 0 and "expired" in expired.text
    alerts = json.loads(invoke("alerts", "--json", "--db", db).output)
    assert all(a["silenced"] is None for a in alerts)
    assert "no active silences" in invoke("silence", "list", "--db", db).text
    assert "expired" in invoke("silence", "list", "--all", "--db", db).text


def test_silence_mistakes_are_clear_errors(tmp_path):
    db = str(make_db(tmp_path / "jacmon.db"))
    no_matcher = invoke("silence", "add", "--for", "1h", "--db", db)
    assert no_matcher.exit_code != 0 and "at least one matcher" in no_matcher.text
    bad = invoke("silence", "add", "--rule", "x", "--for", "soon", "--db", db)
    assert bad.exit_code != 0 and "'soon'" in bad.text
    missing = invoke("silence", "expire", "99", "--db", db)
    assert missing.exit_code != 0 and "silence 99 does not exist" in missing.text
    nodb = invoke("silence", "list", "--db", str(tmp_path / "none.db"))
    assert nodb.exit_code != 0 and "does not exist" in nodb.text
    assert not (tmp_path / "none.db").exists()


def test_notify_log_and_test_explain_what_is_missing(tmp_path):
    db = str(make_db(tmp_path / "jacmon.db"))
    empty = invoke("notify", "log", "--db", db)
    assert empty.exit_code == 0 and "no notifications" in empty.text
    bad_state = invoke("notify", "log", "--state", "lost", "--db", db)
    assert bad_state.exit_code != 0 and "'lost'" in bad_state.text
    config = tmp_path / "config.toml"
    config.write_text("[notify]\n")
    unknown = invoke("notify", "test", "ops", "--config", str(config))
    assert unknown.exit_code != 0
    assert "receiver 'ops' is not configured" in unknown.text
    assert "[[notify.receivers]]" in unknown.text


def test_serve_check_validates_notify_and_says_what_would_match(tmp_path):
    db = str(make_db(tmp_path / "jacmon.db"))
    assert invoke("run-task", "performance", "--db", db, *AT).exit_code == 0
    config = tmp_path / "config.toml"
    config.write_text(
        "[notify]\n"
        '[[notify.receivers]]\nname = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
        '[[notify.receivers]]\nname = "idle"\ntype = "webhook"\nurl = "http://127.0.0.1:9/y"\n'
        '[[notify.routes]]\nreceivers = ["hook"]\nseverity = "warning"\ngroup_wait = "10s"\n'
    )
    result = invoke("serve", "--check", "--json", "--config", str(config), "--db", db,
                    "--port", "0")  # fmt: skip
    body = json.loads(result.output)
    notify = body["plan"]["notify"]
    assert notify["enabled"] is True
    (route,) = notify["routes"]
    assert route["receivers"] == ["hook"]
    assert route["firing_alerts_matched"] >= 1
    assert route["timing"]["group_wait"] == "10s"
    assert any("'idle'" in p and "no [[notify.routes]]" in p for p in body["problems"])
    config.write_text(
        "[notify]\n"
        '[[notify.receivers]]\nname = "hook"\ntype = "webhook"\nurl = "ftp://example.com"\n'
        '[[notify.routes]]\nreceivers = ["hook"]\n'
    )
    bad = invoke("serve", "--check", "--config", str(config), "--db", db, "--port", "0")
    assert bad.exit_code == 1
    assert "ftp://example.com" in bad.text and "url" in bad.text
