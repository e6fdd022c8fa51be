"""A node started by the previous version keeps working with this one (issue 14.15).

The previous version left ``<home>/run/elasticsearch`` owned by the service user. While such a
node runs, `infra up` (and so `newsflow run`) must not fail on it; the next start takes the
directory back (tests/unit/test_localstack_security.py). Read-only against the shared node.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from streams.infra import elastic as es_infra
from streams.settings import Settings


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root and another user")
def test_recording_modules_of_a_node_in_the_old_layout_does_not_fail(elastic: Settings) -> None:
    base = Path(tempfile.mkdtemp(prefix="newsflow-h8-"))
    try:
        infra = elastic.infra.model_copy(update={"home": base})
        rdir = es_infra.run_dir(infra)
        rdir.mkdir(parents=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(rdir, nobody.pw_uid, nobody.pw_gid)
        found = es_infra.record_modules(infra)  # the shared node, read only
        assert found["version"] and "transport-netty4" in found["modules"]
        assert not (rdir / "modules.json").exists()  # nothing written into the user's directory
        os.chown(rdir, 0, 0)
        es_infra.record_modules(infra)
        assert (rdir / "modules.json").stat().st_uid == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)
