"""What the agent can do in its sandbox: bash, editor, search, think, finish, browse.

Each tool fits `corral.ports.Tool`: a `spec` for the model and `run(sandbox, args)`.
`Toolbox` dispatches a model's ToolCall and turns every bad call into an error result.
"""

from corral.tools.bash import BashTool
from corral.tools.browse import BrowseTool
from corral.tools.control import EscalateTool, FinishTool, ThinkTool
from corral.tools.editor import EditorTool
from corral.tools.registry import Toolbox, default_tools
from corral.tools.search import SearchTool

__all__ = [
    "BashTool",
    "BrowseTool",
    "EditorTool",
    "EscalateTool",
    "FinishTool",
    "SearchTool",
    "ThinkTool",
    "Toolbox",
    "default_tools",
]
