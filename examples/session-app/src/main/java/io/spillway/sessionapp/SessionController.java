package io.spillway.sessionapp;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpSession;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * POST /login stores the user in the HTTP session (Redis through Spring Session when one is
 * configured, else this replica's Tomcat memory); GET /whoami answers who the session says is
 * logged in (200 with "user": null when nobody is); GET /work?ms=N holds a Tomcat thread N ms.
 */
@RestController
class SessionController {

    static final String USER = "user";
    static final int MAX_USER_LENGTH = 64;
    static final long MAX_WORK_MS = 10_000;  // bounded: an overload test cannot park a thread for long

    private final String replica = replica();

    @PostMapping(path = "/login", consumes = MediaType.APPLICATION_JSON_VALUE)
    ResponseEntity<Map<String, Object>> loginJson(@RequestBody Map<String, Object> body, HttpServletRequest request) {
        Object user = body.get(USER);
        return login(user instanceof String name ? name : null, request);
    }

    /** Form fields (application/x-www-form-urlencoded) or the query string. */
    @PostMapping("/login")
    ResponseEntity<Map<String, Object>> loginForm(@RequestParam(name = USER, required = false) String user,
                                                  HttpServletRequest request) {
        return login(user, request);
    }

    /** The session's user; with `ms`, after holding a Tomcat thread that long (a logged-in
     * user's request that does work: the demo's load). */
    @GetMapping("/whoami")
    Map<String, Object> whoami(@RequestParam(defaultValue = "0") long ms, HttpServletRequest request)
            throws InterruptedException {
        HttpSession session = request.getSession(false);
        Object user = session == null ? null : session.getAttribute(USER);
        Thread.sleep(Math.max(0, Math.min(ms, MAX_WORK_MS)));
        return answer(user);
    }

    @GetMapping("/work")
    Map<String, Object> work(@RequestParam(defaultValue = "0") long ms) throws InterruptedException {
        long sleep = Math.max(0, Math.min(ms, MAX_WORK_MS));
        Thread.sleep(sleep);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("slept_ms", sleep);
        body.put("replica", replica);
        return body;
    }

    private ResponseEntity<Map<String, Object>> login(String user, HttpServletRequest request) {
        if (user == null || user.isBlank() || user.length() > MAX_USER_LENGTH) {
            Map<String, Object> error = new LinkedHashMap<>();
            error.put("error", "field 'user' must be 1 to " + MAX_USER_LENGTH + " characters");
            return ResponseEntity.badRequest().body(error);
        }
        // A new session id at login, so that an id known before it opens nothing (session fixation).
        HttpSession old = request.getSession(false);
        if (old != null) {
            old.invalidate();
        }
        request.getSession(true).setAttribute(USER, user);
        return ResponseEntity.ok(answer(user));
    }

    private Map<String, Object> answer(Object user) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put(USER, user);
        body.put("replica", replica);
        return body;
    }

    /** The pod's name in Kubernetes ($HOSTNAME), else the host's name. */
    private static String replica() {
        String hostname = System.getenv("HOSTNAME");
        if (hostname != null && !hostname.isBlank()) {
            return hostname;
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "unknown";
        }
    }
}
