"""The dashboard under /admin, behind the admin login: status pages, recruiter-led calls and the copilot.
Built on the API's JSON shapes and the web channel's pages (ARCHITECTURE.md)."""
