"""Read models: events in, view rows out, tracked by position (built by the privacy work).

Transport-agnostic: the same projection code runs in-process and in stream workers.
"""
