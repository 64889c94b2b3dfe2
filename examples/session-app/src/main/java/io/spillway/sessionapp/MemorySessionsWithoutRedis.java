package io.spillway.sessionapp;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.commons.logging.Log;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.env.EnvironmentPostProcessor;
import org.springframework.boot.logging.DeferredLogFactory;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;
import org.springframework.util.StringUtils;

/**
 * With no Redis configured (no spring.data.redis.url, host, sentinel or cluster nodes: in a pod,
 * none of the SPRING_DATA_REDIS_* variables Spillway injects), leaves Redis out altogether:
 * Spring Boot would otherwise build a connection factory for localhost:6379 and Spring Session
 * would keep sessions there. Without a connection factory Spring Session configures no
 * repository and sessions stay in this replica's Tomcat memory, which is what a service without
 * a session store has. The same as setting SPRING_AUTOCONFIGURE_EXCLUDE to EXCLUDED by hand.
 */
public class MemorySessionsWithoutRedis implements EnvironmentPostProcessor {

    static final List<String> EXCLUDED = List.of(
            "org.springframework.boot.autoconfigure.data.redis.RedisAutoConfiguration",
            "org.springframework.boot.autoconfigure.data.redis.RedisReactiveAutoConfiguration",
            "org.springframework.boot.autoconfigure.data.redis.RedisRepositoriesAutoConfiguration");
    private static final List<String> REDIS_SETTINGS = List.of(
            "spring.data.redis.url", "spring.data.redis.host", "spring.data.redis.sentinel.nodes",
            "spring.data.redis.cluster.nodes");
    private static final String EXCLUDE = "spring.autoconfigure.exclude";

    private final Log log;

    public MemorySessionsWithoutRedis(DeferredLogFactory logs) {
        this.log = logs.getLog(MemorySessionsWithoutRedis.class);
    }

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment environment, SpringApplication application) {
        if (REDIS_SETTINGS.stream().anyMatch(name -> StringUtils.hasText(environment.getProperty(name)))) {
            log.info("Sessions are kept in Redis (Spring Session)");
            return;
        }
        List<String> excluded = new ArrayList<>(Binder.get(environment).bind(EXCLUDE, String[].class)
                .map(List::of).orElse(List.of()));
        excluded.addAll(EXCLUDED);
        environment.getPropertySources().addFirst(
                new MapPropertySource("memorySessionsWithoutRedis", Map.of(EXCLUDE, String.join(",", excluded))));
        log.warn("No Redis configured (SPRING_DATA_REDIS_URL is unset): sessions stay in this replica's memory");
    }
}
