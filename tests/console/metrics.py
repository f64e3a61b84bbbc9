"""Reads a /metrics answer on stdin with the Prometheus project's own OpenMetrics parser
(prometheus_client) and prints its samples as JSON: [[name, {labels}, value], ...]. A text the
parser refuses is a failure (exit 1, with the parser's reason)."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    samples = [[s.name, s.labels, s.value] for family in text_string_to_metric_families(text)
               for s in family.samples]
except Exception as e:  # the parser's own error says what is wrong
    sys.exit(f"metrics: not OpenMetrics text: {e}")
print(json.dumps(samples))
