"""Scrape a Prometheus endpoint on the relay and check figures (molecule verify).

    metrics.py URL 'NAME{label="value",...} OP NUMBER' ...
The samples of NAME whose labels include the given ones are summed; OP is one of >= <= == > <. Prints every
figure it read; exits non-zero when a check fails or the endpoint does not answer.
"""
import operator
import re
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}
CHECK = re.compile(r'^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s*(>=|<=|==|>|<)\s*([0-9.eE+-]+)\s*$')

url, checks = sys.argv[1], sys.argv[2:]
with urllib.request.urlopen(url, timeout=10) as answer:
    text = answer.read().decode()
samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
failed = 0
for check in checks:
    match = CHECK.match(check)
    if not match:
        sys.exit("cannot read the check %r" % check)
    name, labels, op, number = match.groups()
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', labels or ""))
    total = sum(s.value for s in samples
                if s.name == name and all(s.labels.get(k) == v for k, v in wanted.items()))
    ok = OPS[op](total, float(number))
    failed += not ok
    print("%s %s: %s %s %s" % ("ok  " if ok else "FAIL", check, total, op, number))
sys.exit(1 if failed else 0)
