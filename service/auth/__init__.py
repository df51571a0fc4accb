"""Who may call opsgate: API keys with roles (``keys``), the reviewer pages' signed sessions
(``sessions``) and their sign-out list (``revocation``).  The HTTP guard lives in ``service.http.guard``.
"""
