"""The machine-readable report (schema ``dora-doctor.report/1``)."""

from __future__ import annotations

import json

from dora_doctor.analysis.findings import Diagnosis
from dora_doctor.analysis.result import Analysis
from dora_doctor.report import RenderOptions


class JsonRenderer:
    name = "json"
    suffix = ".json"

    def render(self, analysis: Analysis, options: RenderOptions) -> str:
        return dumps(analysis.diagnosis)


def dumps(report: Diagnosis) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"
