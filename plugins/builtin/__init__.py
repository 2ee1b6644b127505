"""yibao's own features written as a default plugin (the ``person`` key, built-in functions,
the CHS-DRG grouper), so the hook surface is exercised by the project itself."""
