/* placeholder list until the domain commands land */
#include "cli.h"
const cli_command cli_domain_commands[] = {{NULL, NULL, NULL, NULL}};
