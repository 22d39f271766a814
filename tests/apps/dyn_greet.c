/* libdyn_greet.so: the library dyn_main needs. */
const char *greeting(void) { return "hello from libdyn_greet"; }
