"""HTTP controllers: each maps one API's routes to Gateway calls, and answers errors in that API's shape."""
