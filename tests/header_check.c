/* Compiles the public header alone with -std=c11 -pedantic -Werror. */
#include "threadlog.h"
