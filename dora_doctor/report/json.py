"""The machine-readable report (schema ``dora-doctor.report/1``)."""

from __future__ import annotations

import json

from dora_doctor.analysis.findings import Diagnosis


def render(report: Diagnosis) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"
