"""RSS/Atom/RDF: fetch (HTTP with limits), parse (pure), canonical URLs, poll scheduling."""
