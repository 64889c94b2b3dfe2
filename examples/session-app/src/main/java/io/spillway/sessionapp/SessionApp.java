package io.spillway.sessionapp;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/** The session app: who is logged in, which replica answered, and a slow endpoint for overload. */
@SpringBootApplication
public class SessionApp {

    public static void main(String[] args) {
        SpringApplication.run(SessionApp.class, args);
    }
}
