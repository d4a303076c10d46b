/* A perfectly loadable library that is not a mod_rustapp application. */
int not_an_app(void) { return 42; }
