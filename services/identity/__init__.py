"""Identity: local accounts, second factor, server-side sessions, roles and what an actor may see.

Public modules and what other domains call:
- ``auth``: ``create_user``, ``authenticate_password``, ``begin_enrolment``, ``pending_enrolment``,
  ``confirm_enrolment``, ``verify_second_factor``, ``start_session``, ``hold_recovery_codes``,
  ``take_recovery_codes``, ``load_session_user``, ``end_session``,
  ``revoke_all_sessions``, ``get_user``, ``actor_for``, ``mfa_secret_context``.
- ``permissions``: ``Actor``, ``ROLES``, ``require_role``, ``visible_account_ids``.
"""
