"""Backend-for-frontend: composed reads for client screens, built only on the contexts' facades.

It owns no tables and is not an installed app; import-linter holds it to the facades.
"""
