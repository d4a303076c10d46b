-- The same 12-byte answer from a mod_lua handler.
function handle(r)
    r.content_type = "text/plain"
    r:puts("Hello World!")
    return apache2.OK
end
