/* The Pods' sandbox ("pause") process, built static by the node harness: base images cannot
   be pulled here. Sleeps until it is told to stop. */
#include <signal.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
int main(void) {
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  for (;;) pause();
}
