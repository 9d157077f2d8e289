"""`preload()`: everything a process reads or builds once, done now.

The server calls it before it accepts connections, so no client waits for it.
Otherwise the first episode of each kind reads and parses its data files (the
first seeded reset parses every ticket template), the first environment builds
the knowledge base's BM25 index, and the first MCP session derives the tool
definitions. Each of these is cached for the life of the process.
"""

from __future__ import annotations

from ..episodes.cases import case_templates
from ..episodes.customer import phrasings
from ..episodes.generator import pools, templates
from ..domain.kb import default_kb
from ..episodes.catalogue import TASK_IDS, canonical_task
from .mcp_tools import environment_tools
from ..domain.world import WORLDS_DIR, load_world
from ..grading.promises import acts


def preload() -> None:
    """Read every data file (the forbidden acts too) and build the KB index and the MCP tool definitions."""
    default_kb()
    for task_id in TASK_IDS:
        canonical_task(task_id)
    templates()
    pools()
    case_templates()
    phrasings()
    acts()
    for path in sorted(WORLDS_DIR.glob("*.json")):
        load_world(path.stem)
    environment_tools()
