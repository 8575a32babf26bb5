// placeholder so the workspace manifest parses; the ln engineer writes this file
