"""Saved views: a page's state kept under a name, private to its owner or shared with everyone.

Public (from ``saved``): ``list_views``, ``get_view``, ``create_view``, ``update_view``,
``delete_view``; ``SavedView`` (a view as pages and the API show it), ``ViewPage`` (one page of a
list), ``PAGES`` (the pages whose views can be saved: the cost explorer, ``"explorer"``).

Who may do what:
- Every signed-in person with a role (admin, finance, engineering, executive, auditor) may save
  private views and sees their own views plus every view someone shared.
- Sharing (creating a shared view, or sharing a private one) is open to every role but auditor:
  auditors are read-only. A person who also holds another role may share.
- Only the owner, or an admin, may change or delete a view. Another person's private view is
  "not found" (to everyone but admins, who may open, change and delete any view to tidy up); a
  shared one they can see but not change is "permission denied".
- A view holds the page's state only, never what its owner may see: opening a shared view shows
  the opener's data under the opener's own account permissions (the cost query applies them).
"""

from services.views.saved import (
    PAGES,
    SavedView,
    ViewPage,
    create_view,
    delete_view,
    get_view,
    list_views,
    update_view,
)

__all__ = ["PAGES", "SavedView", "ViewPage", "create_view", "delete_view", "get_view", "list_views",
           "update_view"]
