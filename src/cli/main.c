/* placeholder removed once the CLI lands */
#include <stdio.h>
int main(void) { return 0; }
