"""`python -m statemachine > docs/lifecycle.md`: regenerate the lifecycle page of the docs."""

import sys

from statemachine.lifecycle import render_markdown

sys.stdout.write(render_markdown())
