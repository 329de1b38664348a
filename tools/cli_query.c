/* placeholder list until the query commands land */
#include "cli.h"
const cli_command cli_query_commands[] = {{NULL, NULL, NULL, NULL}};
