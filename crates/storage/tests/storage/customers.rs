//! Customers: tenant isolation, partial updates and pages (P7).

use chrono::Duration;
use otesse_domain::api_key::Environment;
use otesse_domain::customer::{Customer, CustomerId, CustomerPatch, Tenant};
use otesse_domain::organization::OrganizationId;
use otesse_domain::page::PageRequest;
use otesse_domain::ports::CustomerRepository;
use otesse_domain::user::Email;
use otesse_storage::Database;
use uuid::Uuid;

use crate::fixtures::t0;

on_both_databases!(tenants_never_see_each_other, patches_change_only_what_they_name, lists_are_paged_newest_first,);

fn tenant(organization: OrganizationId, environment: Environment) -> Tenant {
    Tenant { organization_id: organization, environment }
}

fn customer(tenant: Tenant, name: &str) -> Customer {
    Customer {
        id: CustomerId(Uuid::now_v7()),
        organization_id: tenant.organization_id,
        environment: tenant.environment,
        name: name.to_owned(),
        email: Some(Email::parse(&format!("{}@example.test", name.to_lowercase())).unwrap()),
        phone: Some("+1 (555) 010-0000".to_owned()),
        created_at: t0(),
        updated_at: t0(),
    }
}

async fn tenants_never_see_each_other(db: Database) {
    let customers = db.customers();
    let acme = OrganizationId(Uuid::now_v7());
    let live = tenant(acme, Environment::Live);
    let test = tenant(acme, Environment::Test);
    let other_org = tenant(OrganizationId(Uuid::now_v7()), Environment::Live);
    let ada = customer(live, "Ada");
    customers.insert(&ada).await.unwrap();

    assert_eq!(customers.find(live, ada.id).await.unwrap(), Some(ada.clone()));
    let page = PageRequest::new(None, None).unwrap();
    for outsider in [test, other_org] {
        assert_eq!(customers.find(outsider, ada.id).await.unwrap(), None);
        assert!(customers.list(outsider, &page).await.unwrap().items.is_empty());
        let rename = CustomerPatch { name: Some("Mallory".into()), ..CustomerPatch::default() };
        let later = t0() + Duration::hours(1);
        assert_eq!(customers.update(outsider, ada.id, &rename, later).await.unwrap(), None);
        assert!(!customers.delete(outsider, ada.id).await.unwrap());
    }
    assert_eq!(customers.find(live, ada.id).await.unwrap(), Some(ada.clone()), "untouched by the other tenants");
    assert_eq!(customers.list(live, &page).await.unwrap().items, vec![ada.clone()]);

    assert!(customers.delete(live, ada.id).await.unwrap());
    assert_eq!(customers.find(live, ada.id).await.unwrap(), None);
    assert!(!customers.delete(live, ada.id).await.unwrap(), "already gone");
}

async fn patches_change_only_what_they_name(db: Database) {
    let customers = db.customers();
    let live = tenant(OrganizationId(Uuid::now_v7()), Environment::Live);
    let ada = customer(live, "Ada");
    customers.insert(&ada).await.unwrap();

    let first = t0() + Duration::minutes(1);
    let renamed = customers
        .update(live, ada.id, &CustomerPatch { name: Some("Ada Lovelace".into()), ..CustomerPatch::default() }, first)
        .await
        .unwrap()
        .expect("the customer");
    assert_eq!(renamed, Customer { name: "Ada Lovelace".into(), updated_at: first, ..ada.clone() });

    let second = t0() + Duration::minutes(2);
    let cleared = customers
        .update(
            live,
            ada.id,
            &CustomerPatch {
                email: Some(None),
                phone: Some(Some("+44 20 7946 0000".into())),
                ..CustomerPatch::default()
            },
            second,
        )
        .await
        .unwrap()
        .expect("the customer");
    assert_eq!(
        cleared,
        Customer { email: None, phone: Some("+44 20 7946 0000".into()), updated_at: second, ..renamed.clone() }
    );

    let third = t0() + Duration::minutes(3);
    let touched =
        customers.update(live, ada.id, &CustomerPatch::default(), third).await.unwrap().expect("the customer");
    assert_eq!(touched, Customer { updated_at: third, ..cleared.clone() });
    assert_eq!(customers.find(live, ada.id).await.unwrap(), Some(touched));
    assert_eq!(
        customers.update(live, CustomerId(Uuid::now_v7()), &CustomerPatch::default(), third).await.unwrap(),
        None
    );
}

async fn lists_are_paged_newest_first(db: Database) {
    let customers = db.customers();
    let acme = OrganizationId(Uuid::now_v7());
    let live = tenant(acme, Environment::Live);
    let mut inserted = Vec::new();
    for n in 0..7 {
        let customer = customer(live, &format!("Customer{n}"));
        customers.insert(&customer).await.unwrap();
        inserted.push(customer);
        // Interleave another environment's rows: they must never show up.
        customers.insert(&customer_in(tenant(acme, Environment::Test), n)).await.unwrap();
    }
    inserted.reverse();

    let mut sizes = Vec::new();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = customers.list(live, &PageRequest::new(Some(3), after).unwrap()).await.unwrap();
        sizes.push(page.items.len());
        if let Some(cursor) = page.next {
            assert_eq!(Some(cursor), page.items.last().map(|customer| customer.id));
        }
        listed.extend(page.items);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(listed, inserted);
}

fn customer_in(tenant: Tenant, n: usize) -> Customer {
    Customer { email: None, phone: None, ..customer(tenant, &format!("Test{n}")) }
}
