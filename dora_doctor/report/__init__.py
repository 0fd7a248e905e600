"""Reporters: each module renders a :class:`~dora_doctor.analysis.findings.Diagnosis` one way.

They only read findings (and, for timelines, the recording); none of them samples,
discovers or decides anything.
"""
