"""Writing a generated file, or checking it (--check): the extract_*_contract.py and gen_*.py scripts."""

import os


def write_or_check(path, text, source, check):
    """Write text to path, or with check compare it; exit status 0 / 1 and one line saying which."""
    if check:
        same = False
        if os.path.exists(path):
            with open(path) as handle:
                same = handle.read() == text
        print("%s %s %s" % (path, "matches" if same else "DIFFERS from", source))
        return 0 if same else 1
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    print("wrote %s from %s" % (path, source))
    return 0
