"""
The worker protocol of src/runner/protocol.ts as JSON lines: every message carries "mpx": 1. JSON has no NaN or
Infinity, so non-finite floats travel as the strings "NaN", "Infinity" and "-Infinity".
"""
import json
import math
import os
import sys

PROTOCOL_VERSION = 1


def _finite_json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return 'NaN' if math.isnan(value) else ('Infinity' if value > 0 else '-Infinity')
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(item) for item in value]
    return value


def encode(value):
    return json.dumps(_finite_json(value), allow_nan=False)


def claim_stdout():
    """
    Keeps the original stdout for this process's JSON alone: fd 1 is duplicated for the answers, then pointed at stderr
    at the OS level, so whatever PyTorch, oneDNN, a C library or a stray print writes to stdout lands on stderr.
    Called before torch is imported.
    """
    sys.stdout.flush()
    answers = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(answers, 'w', encoding='utf-8')


class Channel:
    def __init__(self, stream):
        self.stream = stream

    def send(self, message_type, **fields):
        self.write({'mpx': PROTOCOL_VERSION, 'type': message_type, **fields})

    def write(self, value):
        self.stream.write(encode(value) + '\n')
        self.stream.flush()


def is_start_message(message):
    return (
        isinstance(message, dict)
        and message.get('mpx') == PROTOCOL_VERSION
        and message.get('type') == 'start'
        and isinstance(message.get('run'), dict)
    )
