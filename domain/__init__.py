"""The screening domain: aggregates, their events, data classification and rules.

Pure: no I/O and no imports from services/, projections/ or infra/.
"""
