/* libferry-example.c: the smallest program on libferry: wait until one file
 * is completely written into a folder, print its path, and exit.
 *
 *   cc -o libferry-example libferry-example.c $(pkg-config --cflags --libs ferry)
 *   ./libferry-example /srv/in
 *
 * It uses only the installed header, <ferry.h>, and pkg-config: the test
 * suite builds it against a staged `make install` (tests/system/install.bats),
 * so that the public interface and its packaging cannot rot unseen.
 */
#include <ferry.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
        struct ferry_watch *watch = NULL;
        const struct ferry_event *event;
        char message[1024];
        int r, status = 1;

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        r = ferry_watch_new(&watch, 0);
        if (r < 0) {
                fprintf(stderr, "libferry-example: %s\n", strerror(-r));
                return 1;
        }
        /* Ready mode: one event per completely written file, temporary names
         * never; "auto" knows writers that rename and writers that close. */
        r = ferry_watch_set_ready(watch, "auto");
        if (r >= 0)
                r = ferry_watch_set_events(watch, FERRY_EVENT_READY);
        if (r >= 0)
                r = ferry_watch_add(watch, argv[1]);
        if (r < 0) {
                if (ferry_watch_explain(watch, r, argv[1], message, sizeof(message)) < 0)
                        snprintf(message, sizeof(message), "cannot watch %s: %s", argv[1], strerror(-r));
                fprintf(stderr, "libferry-example: %s\n", message);
                ferry_watch_free(watch);
                return 1;
        }
        fprintf(stderr, "libferry-example: watching %s\n", argv[1]);
        /* Waits without a timeout; ERROR, RESCAN and ROOT_GONE events come
         * through whatever the mask says. */
        while ((r = ferry_watch_next(watch, &event, -1)) > 0) {
                if (event->type == FERRY_EVENT_READY) {
                        printf("%s\n", event->path);
                        status = 0;
                        break;
                }
                if (event->type == FERRY_EVENT_ROOT_GONE) {
                        fprintf(stderr, "libferry-example: %s went away\n", argv[1]);
                        break;
                }
        }
        if (r < 0)
                fprintf(stderr, "libferry-example: %s\n", strerror(-r));
        ferry_watch_free(watch);
        return status;
}
