"""The server's routes, one module per feature, each an `APIRouter` at module level:
`ask` (and its stream), `search`, `feedback`, `health` (under `/api`) and `embed` (`/embed`)."""
